"""Imports stay where the layers say: the engine never loads the UI, core loads nothing heavy,
validating any config loads no torch, and no module imports itself back through a cycle."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import hypertui.engine as engine

ENGINE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(engine.__path__, prefix="hypertui.engine.") if not m.ispkg
)
UI = ("textual", "rich", "plotext")
HEAVY = ("torch", "pandas", "numpy", "scipy", "sqlite3", "ray")


def _first_importer(modules: list[str], banned: tuple[str, ...]) -> str:
    """One fresh interpreter imports each module in turn and names the first after which a
    banned library is loaded ("" when none is): one process per module costs minutes."""
    code = (
        "import sys, importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"    bad = sorted(m for m in sys.modules if m.split('.')[0] in {banned!r})\n"
        "    if bad:\n"
        "        print(name, 'imports', bad); sys.exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_the_list_covers_every_engine_module():
    root = Path(engine.__file__).parent
    files = {
        "hypertui.engine." + ".".join(p.relative_to(root).with_suffix("").parts)
        for p in root.rglob("*.py")
        if p.name != "__init__.py"
    }
    assert files <= set(ENGINE_MODULES) and len(files) >= 30


def test_no_engine_module_imports_ui_libraries():
    assert not _first_importer(ENGINE_MODULES, UI)


def test_core_imports_only_the_standard_library():
    core = [m for m in ENGINE_MODULES if m.startswith("hypertui.engine.core.")]
    assert len(core) >= 8
    assert not _first_importer(core, HEAVY)


def test_validating_every_kind_of_config_imports_no_torch(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    images = tmp_path / "img" / "cat"
    images.mkdir(parents=True)
    for name in ("cat", "dog"):  # the layout is checked here, not the pixels
        (tmp_path / "img" / name).mkdir(exist_ok=True)
        (tmp_path / "img" / name / "a.png").write_bytes(b"")
    (tmp_path / "mymodel.py").write_text("import torch\ndef build(config, shape, n):\n    pass\n")
    code = (
        "import sys\n"
        "from hypertui.engine.core.config import make_config\n"
        "from hypertui.engine.data.sources import checked_config as checked\n"
        "make_config()\n"
        "make_config(problem='mnist', model='cnn', channels=[8, 16])\n"
        f"checked(dict(problem='table', path={str(table)!r}, target='y', hidden=[4]))\n"
        f"checked(dict(problem='images', path={str(tmp_path / 'img')!r}, image_size=32))\n"
        "checked(dict(problem='mnist', model='mymodel:build'))\n"
        "checked(dict(features=['Lot Area', 'Year Built']))\n"
        "from hypertui.engine.sweeps.presets import catalogue\n"
        "catalogue()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "print('torch imported' if heavy else 'ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "ok", done.stdout + done.stderr
