"""The package's layering (README, 'Layering'): each module imports only the modules below it."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "siamtrack"
# module (dotted, under siamtrack) -> siamtrack modules it must not import, directly or through others
FORBIDDEN = {
    "tracker": {"spec", "training", "evaluation", "experiments", "registry", "baselines", "cli", "run", "bench", "serve"},
    "training": {"tracker", "spec", "evaluation", "experiments", "cli", "run"},
    "baselines": {"tracker", "spec", "evaluation", "experiments", "cli"},
    "run": {"training", "evaluation", "experiments", "cli"},
    "spec": {"training", "evaluation", "experiments", "cli", "serve"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The siamtrack modules a file imports (relative imports resolved), top-level package parts only."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [target] if node.module else [[*base, alias.name] for alias in node.names]
            found |= {".".join(name) for name in names if name}
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` (a module or a package prefix) imports, directly or not."""
    seen, todo = set(), [m for m in graph if m == start or m.startswith(start + ".")]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_module_imports_nothing_above_it(module):
    reached = reachable(import_graph(), module)
    above = {m for m in reached for f in FORBIDDEN[module] if m == f or m.startswith(f + ".")}
    assert not above, f"siamtrack.{module} imports {sorted(above)}"


def test_importing_the_api_loads_no_toolkit_plotting_or_training():
    code = ("import sys, siamtrack; print(*sorted(m for m in sys.modules if m.startswith(("
            "'got10k', 'matplotlib', 'siamtrack.training', 'siamtrack.evaluation', 'siamtrack.cli'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []
