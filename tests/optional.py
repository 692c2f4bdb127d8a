"""Optional test dependencies: skip only when one is not installed; a broken install fails."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import pytest


def import_if_installed(module: str, reason: str = "") -> ModuleType:
    """``module``, imported; a skip when its top-level package is not installed at all, and a
    failure (the ImportError) when it is installed but does not import."""
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        pytest.skip(f"{top} is not installed" + (f" ({reason})" if reason else ""))
    return importlib.import_module(module)
