"""The package's import graph: no cycles, and no library module imports the command line.

Every ``import`` statement of every module under src/glyphnet counts, also those inside
functions (a lazy import still ties the two modules together). ``from glyphnet.x import y``
is an edge to glyphnet.x (its __init__ runs first) and to glyphnet.x.y when that is a module,
as /work/shared/tools/imports.py counts them. Edges to the top-level package ``glyphnet`` are
left out: its __init__ only re-exports names for users.
"""
import ast
from pathlib import Path

import glyphnet

SRC = Path(glyphnet.__file__).parent
PACKAGE = "glyphnet"
CLI = "glyphnet.cli"


def module_files(root=SRC):
    """{dotted module name: path} of every .py file of the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_modules(name, path, known):
    """The package modules that module ``name`` (file ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def nearest(dotted):
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(nearest(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            found.add(nearest(source))
            found.update(f"{source}.{alias.name}" for alias in node.names
                         if f"{source}.{alias.name}" in known)
    return {m for m in found if m and m != name and m != PACKAGE}


def import_graph():
    files = module_files()
    return {name: imported_modules(name, path, files) for name, path in files.items()}


def find_cycle(graph):
    """One import cycle as a list [a, b, ..., a], or None."""
    state, stack = {}, []   # state: 1 = on the current path, 2 = finished

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def is_cli(name):
    return name == CLI or name.startswith(CLI + ".")


def test_the_graph_holds_every_module_and_known_edges():
    graph = import_graph()
    assert {"glyphnet.cli", "glyphnet.nn.model", "glyphnet.inspection.report"} <= set(graph)
    assert "glyphnet.inspection.report_figures" in graph["glyphnet.inspection.report"]
    assert "glyphnet.nn.layers" in graph["glyphnet.nn.model"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_library_module_imports_the_command_line():
    graph = import_graph()
    offenders = sorted(f"{m} imports {t}" for m, targets in graph.items() if not is_cli(m)
                       for t in targets if is_cli(t))
    assert not offenders, "; ".join(offenders)


def test_the_checks_catch_a_cycle_and_a_library_module_importing_the_cli(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "cli").mkdir(parents=True)
    for name, text in {"__init__.py": "", "a.py": "from . import b\n",
                       "b.py": "def f():\n    from .a import g\n",
                       "c.py": "from .cli.run import main\n",
                       "cli/__init__.py": "", "cli/run.py": "from ..c import x\n"}.items():
        (pkg / name).write_text(text)
    files = module_files(pkg)
    graph = {name: imported_modules(name, path, files) for name, path in files.items()}
    assert graph["glyphnet.c"] == {"glyphnet.cli.run"}
    assert find_cycle({k: graph[k] for k in ("glyphnet.a", "glyphnet.b")}) == \
        ["glyphnet.a", "glyphnet.b", "glyphnet.a"]
    assert find_cycle({"x": {"y"}, "y": set()}) is None
    assert [m for m, ts in graph.items() if not is_cli(m) and any(map(is_cli, ts))] == \
        ["glyphnet.c"]
