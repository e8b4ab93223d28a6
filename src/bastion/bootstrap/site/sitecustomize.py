"""Loaded by Python at start in every process `bastion-run` launches: calls protect().

Python imports one `sitecustomize` module; if the application's environment had its own, it
is imported after ours so that nothing of the user's setup is lost.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys


def _start() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import bastion

        bastion.protect()
    except Exception as exc:  # never stop the application from starting
        logging.getLogger("bastion").error("bastion: protect() failed, the application runs "
                                           "unprotected: %r", exc)
    # Chain to the sitecustomize this one shadows, if there is one; ours stays registered
    # (the import system expects to find it in sys.modules when this file ends).
    ours = sys.modules.pop("sitecustomize", None)
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved_path
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_start()
