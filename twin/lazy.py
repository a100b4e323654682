"""Lazy re-exports (PEP 562): a package names its public objects without importing their modules
until one is used, so importing a light part of it stays light."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


def lazy_exports(package: str, home: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each name of `home` from its module when first used."""

    def lazy_getattr(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home[name]), name)

    return lazy_getattr
