"""The package's shape: layers point one way, no import cycles, small modules, a test file per module.

Layers, by folder (data → models → metrics → locate → tune → retain → probes → experiments → plots → cli): a module may import its
own layer or a lower one, never a higher one, at module level or inside a function."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lftf_interp"
LAYERS = [  # sub-packages (and the few top-level modules), lowest first
    {"__init__", "errors", "options", "configs"},
    {"provenance", "store"},
    {"data"},
    {"models"},
    {"metrics"},
    {"locate"},
    {"tune"},
    {"retain"},
    {"probes"},
    {"experiments"},
    {"plots"},
    {"cli"},
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_LINES = 500  # lines as `ruff format` writes them (110 columns)


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(PKG).with_suffix("").parts
        out[".".join(parts)] = p
    return out


def imports(name: str, path: Path) -> set[str]:
    """Modules of this package that ``name`` imports (absolute dotted names relative to the package)."""
    pkg_parts = name.split(".")[:-1] if not path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("lftf_interp"):
                target = node.module.removeprefix("lftf_interp").lstrip(".")
            else:
                continue
            found.add(target or "__init__")
            found.update(f"{target}.{a.name}".lstrip(".") for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("lftf_interp").lstrip(".")
                for a in node.names
                if a.name.startswith("lftf_interp")
            )
    known = modules()
    return {t for t in found if t in known or f"{t}.__init__" in known}


def layer(name: str) -> int:
    top = name.split(".")[0]
    return RANK[top]


def test_every_module_has_a_layer():
    assert {m.split(".")[0] for m in modules()} <= set(RANK), "add the new module to LAYERS"


def test_layers_point_one_way():
    bad = [(m, t) for m, p in modules().items() for t in imports(m, p) if layer(t) > layer(m)]
    assert not bad, f"imports from a lower layer into a higher one: {bad}"


def test_no_import_cycles():
    graph = {
        m: {t if t in modules() else f"{t}.__init__" for t in imports(m, p)} - {m}
        for m, p in modules().items()
    }
    # a package's __init__ re-exports its modules; those edges are not cycles
    for m in graph:
        if m.endswith("__init__"):
            graph[m] = set()
    seen, stack = set(), []

    def visit(m):
        if m in stack:
            pytest.fail(f"import cycle: {' -> '.join([*stack[stack.index(m) :], m])}")
        if m in seen:
            return
        stack.append(m)
        for t in graph.get(m, ()):
            visit(t)
        stack.pop()
        seen.add(m)

    for m in graph:
        visit(m)


def test_no_module_imports_the_cli():
    outside = [
        m
        for m, p in modules().items()
        if not m.startswith("cli.") and any(t.split(".")[0] == "cli" for t in imports(m, p))
    ]
    assert outside == []


def private_uses(name: str, path: Path) -> list[str]:
    """Private names (``_x``) this module takes from another module of the package: imported by name, or read
    as an attribute of a package module it imported."""
    tree = ast.parse(path.read_text())
    found, module_aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lftf_interp"):
            for a in node.names:
                target = f"{node.module}.{a.name}".removeprefix("lftf_interp.")
                if target in modules() or f"{target}.__init__" in modules():
                    module_aliases.add(a.asname or a.name)
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    found.append(f"{node.module}.{a.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def private_attributes(path: Path) -> set[str]:
    """The private names (``_x``) a module defines: functions, classes, methods, attributes it assigns."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_reads(path: Path, own: set[str], others: set[str]) -> list[str]:
    """``obj._x`` on any object but ``self`` / ``cls``, where ``_x`` is a private name another module of the
    package defines and this one does not (a private of a third-party library is not ours to police)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in others - own
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{ast.unparse(node.value)}.{node.attr}")
    return found


def test_no_private_names_cross_modules():
    bad = {m: u for m, p in modules().items() if (u := private_uses(m, p))}
    assert not bad, f"modules using another module's private names (make them public or move them): {bad}"
    defined = {m: private_attributes(p) for m, p in modules().items()}
    reads = {
        m: u
        for m, p in modules().items()
        if (u := private_reads(p, defined[m], set().union(*(d for n, d in defined.items() if n != m))))
    }
    assert not reads, f"modules reading another module's private attributes on its objects: {reads}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name):
    n = len(modules()[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{name} has {n} lines; split it (no module over {MAX_LINES})"


def test_every_test_file_maps_to_a_module():
    """tests/<pkg path>/test_<module>.py ↔ lftf_interp/<pkg path>/<module>.py; integration tests, the notebooks
    and this file are the exceptions."""
    exceptions = {
        "test_notebooks.py",
        "test_package.py",
        "test_wheel.py",
        "test_gpu_check.py",
        "test_docs_commands.py",
    }
    unmapped = []
    for t in (ROOT / "tests").rglob("test_*.py"):
        rel = t.relative_to(ROOT / "tests")
        if rel.parts[0] == "integration" or t.name in exceptions:
            continue
        if not (PKG / rel.parent / (t.name.removeprefix("test_"))).is_file():
            unmapped.append(str(rel))
    assert not unmapped, f"test files without a module: {unmapped}"


def test_committed_notebooks_carry_no_environment_noise():
    """No committed output names this machine's paths (a warning from the kernel's environment, a traceback)."""
    import json

    noisy = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            for o in cell.get("outputs", []):
                text = "".join(o.get("text", "")) + json.dumps(o.get("data", {}).get("text/plain", ""))
                if "site-packages" in text or str(ROOT) in text or o.get("output_type") == "error":
                    noisy.append(f"{nb.name} cell {i}")
    assert not noisy, f"outputs with environment noise: {noisy}"


def test_public_functions_take_at_most_eight_parameters():
    """More than eight belong in a config object (the CLI's commands, whose parameters are its options, aside)."""
    wide = []
    for name, path in modules().items():
        if name.startswith("cli."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                n = len([p for p in params if p.arg not in ("self", "cls")])
                if n > 8:
                    wide.append(f"{name}.{node.name} ({n})")
    assert not wide, f"functions with more than 8 parameters: {wide}"


def _axis_name_branches(path: Path, names: set[str]) -> list[str]:
    """Comparisons with a shipped axis's name (``axis == "gender"``, ``in ("gender", …)``,
    ``.startswith("race")``): what an axis has must come from its file, not its name."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            consts = [
                e for p in parts for e in (p.elts if isinstance(p, ast.Tuple | ast.List | ast.Set) else [p])
            ]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("startswith", "endswith"):
            consts = node.args
        else:
            continue
        if any(isinstance(c, ast.Constant) and c.value in names for c in consts):
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


def test_no_branch_on_an_axis_name():
    from lftf_interp.data import shipped_axes

    names = set(shipped_axes())
    bad = [hit for p in modules().values() for hit in _axis_name_branches(p, names)]
    assert not bad, f"branches on an axis's name (declare it in the axis file instead): {bad}"


MAX_FUNCTION_LINES = 80  # longer, and a name would explain a piece: split it


def test_no_function_is_over_80_lines():
    long = [
        f"{name}.{n.name} ({n.end_lineno - n.lineno + 1})"
        for name, p in modules().items()
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, (
        f"functions over {MAX_FUNCTION_LINES} lines (split where a name explains the piece): {long}"
    )
