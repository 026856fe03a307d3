"""The layering of hf_spider, read from the code (every `import`, at module level or inside a
function; `if TYPE_CHECKING:` blocks excepted): docs/ARCHITECTURE.md states the rule, this
test enforces it.

- The foundation (`errors`, `_paths`, `_lazy`, `_cli_utils`, `_hub`) imports no stage.
- A stage imports only the foundation, itself and the stages before it, in `STAGES` order.
- Product code (the foundation, the stages, the CLI entry) never imports `testing` or `zoo`,
  the tools around the product; they may import any stage.
- No circle between modules (a lazy import inside a function counts: it is a circle at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

import hf_spider

PACKAGE = Path(hf_spider.__file__).resolve().parent
FOUNDATION = ("errors", "_paths", "_lazy", "_cli_utils", "_hub")
STAGES = ("models", "catalog", "tasks", "estimators", "probe", "ranker", "hardware", "recommend")
TOOLS = ("testing", "zoo")
ENTRY = ("cli", "__main__")  # the command line: assembles every stage's commands


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_of(p): p for p in PACKAGE.rglob("*.py")}


def _lazy_names(init: Path) -> dict[str, str]:
    """name -> submodule of a package face's `attach(__name__, {...})`."""
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(init.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach":
            for key, names in zip(node.args[1].keys, node.args[1].values, strict=True):
                out.update({elt.value: key.value for elt in names.elts})
    return out


def _imports(path: Path) -> set[str]:
    """The hf_spider modules `path` imports (a package's lazy names resolved to their module)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(stmt)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for sub in node.body
        for stmt in ast.walk(sub)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hf_spider")}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("hf_spider")
        ):
            base = node.module
            lazy = (
                _lazy_names(MODULES[base]) if base in MODULES and MODULES[base].name == "__init__.py" else {}
            )
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.add(f"{base}.{alias.name}")
                elif alias.name in lazy:
                    found.add(f"{base}.{lazy[alias.name]}")
                else:
                    found.add(base)
    return {m for m in found if m in MODULES}


GRAPH = {module: _imports(path) for module, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_belongs_to_a_known_part():
    known = {"", *FOUNDATION, *STAGES, *TOOLS, *ENTRY}
    assert {_part(m) for m in MODULES} <= known, {_part(m) for m in MODULES} - known


def test_stages_import_only_the_foundation_and_earlier_stages():
    broken = []
    for module, targets in GRAPH.items():
        part = _part(module)
        if part in FOUNDATION:
            allowed = set(FOUNDATION) | {""}
        elif part in STAGES:
            allowed = {"", *FOUNDATION, *STAGES[: STAGES.index(part) + 1]}
        else:
            continue
        broken += [f"{module} -> {t}" for t in sorted(targets) if _part(t) not in allowed]
    assert not broken, "\n".join(broken)


def test_product_code_never_imports_the_tools():
    product = [m for m in GRAPH if _part(m) not in TOOLS]
    broken = [f"{m} -> {t}" for m in product for t in sorted(GRAPH[m]) if _part(t) in TOOLS]
    assert not broken, "\n".join(broken)


def test_no_import_circle_between_modules_or_packages():
    def circles(graph: dict[str, set[str]]) -> list[list[str]]:
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(node: str) -> None:  # Tarjan's strongly connected components
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for nxt in sorted(graph.get(node, ())):
                if nxt not in index:
                    visit(nxt)
                    low[node] = min(low[node], low[nxt])
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

        for node in sorted(graph):
            if node not in index:
                visit(node)
        return found

    files = {m: {t for t in ts if t != m} for m, ts in GRAPH.items()}
    assert not circles(files), circles(files)
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(_part(module), set()).update(
            _part(t) for t in targets if _part(t) != _part(module)
        )
    packages.pop("", None)  # the top-level face names the stages lazily and imports none of them
    assert not circles(packages), circles(packages)
