"""hypertui: a terminal hyperparameter lab for PyTorch.

`import hypertui` is the public Python entry point: `hypertui.init` tracks your own training
loop (engine/tracking/run.py), `hypertui.Stop` and `hypertui.Pruned` are what `run.log`
raises when hypertui stops a run, `hypertui.load_model(run_id)` returns a run's model with
its best weights (engine/sweeps/model_out.py). Importing it costs no torch, pandas or
Textual: the names load on first use. The code lives in three subpackages, kept at the
repository's top level and installed under this one name:

- `hypertui.engine`: data, models, training, the run store, analysis and sweeps (no UI);
- `hypertui.tui`: the command line (`hypertui.tui.cli`) and the Textual app (`hypertui.tui.app`);
- `hypertui.presets`: the shipped experiment presets (TOML data).
"""

__version__ = "0.1.0"

import os as _os

# In a checkout the subpackages are the top-level folders beside this one: `engine/`,
# `tui/`, `presets/`. An editable install maps them too, but a checkout on PYTHONPATH with
# nothing installed (a lent GPU machine running bench/gpu.sh) finds them only through this.
_here = _os.path.dirname(_os.path.abspath(__file__))
_checkout = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "engine")) and _os.path.isfile(
    _os.path.join(_checkout, "engine", "__init__.py")
):
    __path__.append(_checkout)


_PUBLIC = {"init": "init", "Run": "Run", "Stop": "Stop", "Pruned": "Pruned", "load_model": ""}


def __getattr__(name: str):
    if name == "load_model":  # a run's best weights in its nn.Module
        from hypertui.engine.sweeps.model_out import load_model

        return load_model
    if name in _PUBLIC:
        from hypertui.engine.tracking import run

        return getattr(run, _PUBLIC[name])
    raise AttributeError(f"module 'hypertui' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
