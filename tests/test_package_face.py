"""One package-face style: every `__init__.py` of hf_spider exposes its names through
`hf_spider._lazy.attach` and imports the same names in a `TYPE_CHECKING` block; importing the
packages loads nothing heavy."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import hf_spider

PACKAGE = Path(hf_spider.__file__).resolve().parent
INITS = sorted(PACKAGE.rglob("__init__.py"))
HEAVY = ("numpy", "scipy", "pandas", "torch", "transformers", "onnxruntime", "datasets", "gradio", "sklearn")


def _module_name(init: Path) -> str:
    return ".".join(init.parent.relative_to(PACKAGE.parent).parts)


def _face(init: Path) -> tuple[set[str], set[str]]:
    """(names given to `attach`, names imported under `if TYPE_CHECKING:`)."""
    tree = ast.parse(init.read_text())
    lazy: set[str] = set()
    typed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach":
            mapping = node.args[1]
            assert isinstance(mapping, ast.Dict), f"{init}: attach() takes a literal mapping"
            for names in mapping.values:
                lazy |= {elt.value for elt in names.elts}
            for keyword in node.keywords:
                if keyword.arg == "eager":
                    lazy |= {elt.value for elt in keyword.value.elts}
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), f"{init}: only imports under TYPE_CHECKING"
                typed |= {alias.asname or alias.name for alias in stmt.names}
    return lazy, typed


@pytest.mark.parametrize("init", INITS, ids=[_module_name(i) for i in INITS])
def test_every_package_uses_the_lazy_loader_and_a_type_checking_block(init):
    lazy, typed = _face(init)
    assert lazy, f"{init}: no attach(...) call"
    eager = {"__version__"}
    assert typed == lazy - eager, f"{init}: TYPE_CHECKING and attach() disagree: {typed ^ (lazy - eager)}"
    module = importlib.import_module(_module_name(init))
    assert set(module.__all__) == lazy and sorted(dir(module)) == sorted(lazy)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_importing_every_package_loads_nothing_heavy():
    modules = ", ".join(_module_name(i) for i in INITS)
    code = f"import sys, {modules}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
