"""Bastion: self-hosted App and API Protection for Python web applications.

    import bastion
    bastion.protect()      # before the application is created

The public API is re-exported here and imported lazily, so that `import bastion` costs nothing
until something is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["BlockedRequest", "__version__", "block_request", "protect", "set_user"]

if TYPE_CHECKING:
    from bastion.blocking import BlockedRequest
    from bastion.runtime import block_request, protect, set_user

_LAZY = {
    "BlockedRequest": "bastion.blocking",
    "block_request": "bastion.runtime",
    "protect": "bastion.runtime",
    "set_user": "bastion.runtime",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
