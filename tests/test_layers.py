"""The layer rule of docs/design.md (Layers): only ccdm_gui/app may touch Qt, and imports
point down cli -> app -> export -> core (the command line opens the window, lazily, for
``ccdm gui``; the window never reaches for the command line). Checked statically (every
import statement, even inside functions) and dynamically (what importing actually loads)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "ccdm_gui"
QT = ("PySide6", "shiboken6", "pyqtgraph")
# Packages each layer must never import, at any depth or time.
FORBIDDEN = {
    "core": QT + ("ccdm_gui.app", "ccdm_gui.cli", "ccdm_gui.export"),
    "export": QT + ("ccdm_gui.app", "ccdm_gui.cli"),
    "app": ("ccdm_gui.cli",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(src: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``src``, relative ones resolved."""
    tree = ast.parse(src)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, base)]
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _hits(name: str, banned: tuple[str, ...]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


def test_import_scanner_catches_what_it_should():
    # Guard the guard: a scanner that finds nothing would pass every layer silently.
    src = (
        "import os\nfrom PySide6 import QtCore\n"
        "def f():\n    import pyqtgraph as pg\n    from ...app import worker\n"
        "importlib.import_module('shiboken6')\n"
    )
    mods = {m for _, m in _imports(src, "ccdm_gui.core.machines.probe")}
    assert {"PySide6", "pyqtgraph", "ccdm_gui.app", "shiboken6"} <= mods
    assert not any(_hits(m, FORBIDDEN["core"]) for _, m in _imports("import os, torch", "x.y"))


def test_no_layer_imports_qt_or_upper_layers_statically():
    bad = []
    for layer, banned in FORBIDDEN.items():
        files = sorted((PKG / layer).rglob("*.py"))
        assert files, f"no python files under ccdm_gui/{layer}"
        for f in files:
            src = f.read_text()
            for line, mod in _imports(src, _module_name(f), f.name == "__init__.py"):
                if _hits(mod, banned):
                    bad.append(f"{f.relative_to(PKG.parent)}:{line} imports {mod}")
    assert not bad, "layer violations:\n" + "\n".join(bad)


_PROBE = """
import json, pkgutil, importlib, sys
QT = {qt!r}
def loaded():
    return sorted(m for m in sys.modules if m.split('.')[0] in QT)
mods = []
for pkg in ('ccdm_gui.core', 'ccdm_gui.export'):
    p = importlib.import_module(pkg)
    mods.append(pkg)
    for info in pkgutil.walk_packages(p.__path__, pkg + '.'):
        importlib.import_module(info.name)
        mods.append(info.name)
core_export = loaded()
import ccdm_gui.cli
ccdm_gui.cli.build_parser()  # registers every sub-command, as `ccdm --help` does
print(json.dumps({{"modules": mods, "core_export": core_export, "cli": loaded()}}))
"""


def test_importing_core_export_and_cli_loads_no_qt():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(qt=QT)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PKG.parent,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert "ccdm_gui.core.sampler" in res["modules"]  # the walk really imported things
    assert res["core_export"] == [], f"core/export pulled in Qt: {res['core_export']}"
    assert res["cli"] == [], f"ccdm_gui.cli pulled in Qt at import time: {res['cli']}"
