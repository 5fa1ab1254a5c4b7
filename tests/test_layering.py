"""The layering is one-directional: wire -> node -> policies -> simulation | deployment -> cli.

Every import in fedsim/ (module-level or inside a function) is checked, so a shortcut back up the
stack fails here instead of growing into a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "fedsim"

# package (or module) -> what it must never import
FORBIDDEN = {
    "fedsim.wire": ("fedsim.node", "fedsim.policies", "fedsim.assembly", "fedsim.runtime", "fedsim.deploy",
                    "fedsim.report", "fedsim.cli", "fedsim.api"),
    "fedsim.node": ("fedsim.policies", "fedsim.assembly", "fedsim.runtime", "fedsim.deploy", "fedsim.report",
                    "fedsim.cli", "fedsim.api"),
    "fedsim.policies": ("fedsim.assembly", "fedsim.runtime", "fedsim.deploy", "fedsim.report", "fedsim.cli",
                        "fedsim.api"),
    "fedsim.assembly": ("fedsim.runtime", "fedsim.deploy", "fedsim.report", "fedsim.cli", "fedsim.api"),
    "fedsim.runtime": ("fedsim.deploy", "fedsim.report", "fedsim.cli"),
    "fedsim.deploy": ("fedsim.runtime", "fedsim.cli", "fedsim.api"),
    "fedsim.report": ("fedsim.runtime", "fedsim.deploy", "fedsim.cli", "fedsim.api"),
}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        yield name, path


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_no_import_goes_back_up_the_stack(module, path):
    bad = []
    for layer, forbidden in FORBIDDEN.items():
        if _under(module, layer):
            bad += [imp for imp in _imports(path) if any(_under(imp, f) for f in forbidden)]
    assert not bad, f"{module} imports {sorted(set(bad))}"
