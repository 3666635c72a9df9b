import subprocess
import sys


def test_engine_imports_no_ui_libraries():
    code = (
        "import sys, engine, engine.config, engine.train, engine.data.mnist;"
        "import engine.analysis, engine.claims, engine.significance, engine.study;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'plotext'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
