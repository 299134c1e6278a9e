"""The import graph of `hf_lottery`: no cycles (imports inside functions count), no `importlib` detours, no heavy
modules loaded by ``import hf_lottery``, and no import of the user-facing `trainer_callbacks` / `recipes`."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path


PACKAGE_DIR = Path(__file__).resolve().parents[1] / "hf_lottery"
# Packages whose `_EXPORTS` table is read by a module `__getattr__` (PEP 562): the only allowed importlib use.
LAZY_TABLES = ("hf_lottery", "hf_lottery.search", "hf_lottery.pipeline")
HEAVY_MODULES = (
    "transformers.trainer",
    "torch_pruning",
    "matplotlib",
    "datasets",
    "sklearn",
    "statsmodels",
    "evaluate",
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` blocks (imports for type checkers only, never executed)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _known(target: str) -> str | None:
    """The module of the graph that importing `target` loads (its longest known prefix), if inside hf_lottery."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Modules of hf_lottery an import statement loads; ``from pkg import name`` loads ``pkg.name`` if a module."""
    if isinstance(node, ast.Import):
        return [t for t in (_known(alias.name) for alias in node.names) if t]
    if node.level:
        package = module if _is_package(module) else module.rpartition(".")[0]
        base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    targets = []
    for alias in node.names:
        target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else _known(base)
        if target:
            targets.append(target)
    return targets


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == "_EXPORTS":
            return ast.literal_eval(node.value)
    raise AssertionError("lazy-export table `_EXPORTS` not found")


def _is_import_module_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = ast.unparse(node.func)
    return name in ("importlib.import_module", "import_module", "__import__", "importlib.__import__")


def _names_hf_lottery_module(call: ast.Call) -> bool:
    """A dynamic import counts unless its argument is a literal naming a module outside hf_lottery."""
    if not call.args:
        return True
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value.startswith(("hf_lottery", "."))
    return True  # an f-string or a variable: may name anything, e.g. f"{__package__}.commands.{name}"


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges module -> imported module (every import statement, also inside functions; lazy tables as edges of
    their package) and the `importlib` detours found outside the lazy tables."""
    edges: dict[str, set[str]] = {module: set() for module in MODULES}
    detours = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges[module].update(t for t in _targets(module, node) if t != module)
            elif _is_import_module_call(node) and _names_hf_lottery_module(node) and module not in LAZY_TABLES:
                detours.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno}: {ast.unparse(node)}")
        if module in LAZY_TABLES:
            edges[module].update(f"{module}.{target}" for target in _lazy_table(tree).values())
    return edges, detours


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in edges:
                continue
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def _describe(cycle: list[str], edges: dict[str, set[str]]) -> str:
    links = [f"{a} -> {b}" for a in cycle for b in sorted(edges[a]) if b in cycle]
    return f"cycle of {len(cycle)} modules: " + "; ".join(links)


def test_graph_walker_sees_function_level_relative_and_absolute_imports(tmp_path):
    # The walker itself: an import inside a function and an absolute `hf_lottery.*` import are edges.
    tree = ast.parse("def f():\n    from .structure import EncoderStructure\nimport hf_lottery.files\n")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_targets("hf_lottery.gates", node))
    assert found == {"hf_lottery.structure", "hf_lottery.files"}
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges, _ = import_graph()
    assert "hf_lottery.tickets.ticket" in edges["hf_lottery"]  # the lazy table counts as edges of the package


def test_no_import_cycles_inside_hf_lottery():
    edges, _ = import_graph()
    cycles = find_cycles(edges)
    report = "\n".join(_describe(cycle, edges) for cycle in cycles)
    assert not cycles, report


def test_no_importlib_detours_outside_the_lazy_export_tables():
    _, detours = import_graph()
    assert not detours, "\n".join(detours)


def test_ticket_layer_imports_nothing_above_it():
    # ticket.py holds the ticket and its own two files: no Hub push, compaction, legacy, loading or plots.
    edges, _ = import_graph()
    low_layer = (
        "hf_lottery.tickets.ticket",
        "hf_lottery.tickets.fields",
        "hf_lottery.tickets.serialization",
        "hf_lottery.downloads",
    )
    reachable, todo = set(), list(low_layer)
    while todo:
        for other in edges[todo.pop()]:
            if other not in reachable:
                reachable.add(other)
                todo.append(other)
    allowed = {
        "hf_lottery._version",
        "hf_lottery.files",
        "hf_lottery.provenance",
        "hf_lottery.atomic",
        "hf_lottery.structure",
        *low_layer,
    }
    assert reachable <= allowed, sorted(reachable - allowed)
    assert "hf_lottery.tickets.ticket" not in edges["hf_lottery.downloads"]


def test_hf_lottery_never_imports_trainer_callbacks_or_recipes():
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif _is_import_module_call(node) and node.args and isinstance(node.args[0], ast.Constant):
                names = [str(node.args[0].value)]
            offenders += [f"{module}: {n}" for n in names if n.split(".")[0] in ("trainer_callbacks", "recipes")]
    assert not offenders, offenders


def _loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=PACKAGE_DIR.parent
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return [m for m in loaded if any(m == heavy or m.startswith(heavy + ".") for heavy in HEAVY_MODULES)]


def test_import_hf_lottery_leaves_heavy_modules_unloaded():
    assert _loaded_after("import hf_lottery") == []


def test_ticket_and_config_load_without_heavy_modules():
    heavy = _loaded_after(
        "from hf_lottery import LotteryTicket, TicketSearchConfig, load_legacy_ticket\n"
        "import hf_lottery.downloads, hf_lottery.tickets.serialization"
    )
    assert heavy == []
