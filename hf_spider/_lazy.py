"""The one way a package of hf-spider exposes its public names: lazily, like huggingface_hub.

Each `__init__.py` lists `{submodule: [names]}` and calls `attach`; a `TYPE_CHECKING` block below
it imports the same names for type checkers and readers (tests/test_package_face.py checks that
the two agree). Nothing heavy loads until a name is used, so `import hf_spider` stays fast.

Example (in `hf_spider/hardware/__init__.py`):
    >>> __getattr__, __dir__, __all__ = attach(__name__, {"targets": ["DeviceTarget"]})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def attach(
    package: str, submodules: Mapping[str, Iterable[str]], *, eager: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`(__getattr__, __dir__, __all__)` for `package`, loading `package.<sub>` on first use.

    Args:
        package: the package's `__name__`.
        submodules: submodule name (relative to `package`) -> the public names it defines.
        eager: names the package defines itself (added to `__all__` and `dir()`).
    """
    where = {name: sub for sub, names in submodules.items() for name in names}
    public = sorted({*where, *eager})

    def __getattr__(name: str) -> Any:
        sub = where.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{sub}"), name)

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, list(public)
