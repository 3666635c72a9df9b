"""The engine never imports the UI: every engine module, each in a fresh interpreter."""

import pkgutil
import subprocess
import sys

import engine

ENGINE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine.") if not m.ispkg
) + ["engine", "engine.data"]
UI = ("textual", "rich", "plotext")


def test_the_list_covers_every_engine_module():
    from pathlib import Path

    files = {
        ".".join(p.relative_to(Path(engine.__file__).parents[1]).with_suffix("").parts)
        for p in Path(engine.__file__).parent.rglob("*.py")
        if p.name != "__init__.py"
    }
    assert files <= set(ENGINE_MODULES) and len(files) >= 20


def test_no_engine_module_imports_ui_libraries():
    # One fresh interpreter imports every module in turn and names the first after which a
    # UI library is loaded: one process per module cost 2.5 min on a busy 2-core machine.
    code = (
        "import sys, importlib\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        f"    bad = sorted(m for m in sys.modules if m.split('.')[0] in {UI!r})\n"
        "    if bad:\n"
        "        print(name, 'imports', bad); sys.exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
