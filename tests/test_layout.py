"""The package's layering (README, 'How it works'): every module imports only modules of lower layers, or of its
own package; the wings (evaluation, bench, serve, training) know nothing of one another."""
import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "siamtrack"
# bottom first; a module is named by its first two dotted parts at most (core, serve, datasets.frames -> datasets)
LAYERS = [
    {"errors", "text", "files", "process", "draw", "synthetic"},  # the ground floor: nothing of siamtrack's below
    {"config", "inputs", "video", "datasets"},
    {"models"},  # the network
    {"core"},  # the model built once, its backends, the tracker loop: no training, evaluation, serving or CLI
    {"busy", "spec", "baselines", "sources"},
    {"outputs", "vot"},
    {"run"},
    {"evaluation", "bench", "serve", "training"},  # the wings
    {"integrations"},  # the annotation tools' plug-ins, on the serve infrastructure
    {"cli"},
    {"", "__main__", "vot_traxpython"},  # the package's face and its scripts
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The siamtrack modules a file imports (relative imports resolved), lazy imports included."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [target] if node.module else [[*base, alias.name] for alias in node.names]
            found |= {".".join(name) for name in names if name}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("siamtrack."):
            found.add(node.module.removeprefix("siamtrack."))
    return found


@cache  # parsed once, not once a test
def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def area(module: str) -> str:
    """The layer entry a module belongs to: its top-level package or module."""
    return module.split(".")[0]


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_module_imports_only_lower_layers_or_its_own_package(module):
    assert area(module) in LAYER, f"siamtrack.{module} is in no layer: add it to LAYERS"
    upward = sorted(name for name in import_graph()[module]
                    if area(name) != area(module) and LAYER.get(area(name), len(LAYERS)) >= LAYER[area(module)])
    assert not upward, f"siamtrack.{module} imports {upward}, not below it"


def test_importing_the_api_loads_no_toolkit_plotting_or_training():
    code = ("import sys, siamtrack; print(*sorted(m for m in sys.modules if m.startswith(("
            "'got10k', 'matplotlib', 'siamtrack.training', 'siamtrack.evaluation', 'siamtrack.cli', 'onnx'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []
