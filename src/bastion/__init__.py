"""Bastion: self-hosted App and API Protection for Python web applications."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
