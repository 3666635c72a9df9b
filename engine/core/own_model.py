"""Where `model = "package.module:build"` points, checked without running the user's code.

A preset is validated before anything trains (and without torch), so the check finds the
module's source and looks for a top-level `build` in it; the module is imported, and the
builder called, only when a trial builds its model (training/usermodel.py), where a failure
is that trial's, with its traceback in the run's log.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys

from hypertui.engine.core.errors import ConfigError


def on_import_path() -> None:
    """`hypertui` (a console script) leaves the working directory off sys.path; a user's
    `model = "mymodels:build"` lives there."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())


def beside(spec: str, folder: str) -> bool:
    """Whether the module `spec` names is a file (or package) in `folder`: a preset's model
    is imported from the preset's folder, as its relative `path` is read from there."""
    top = spec.partition(":")[0].split(".")[0]
    return os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isfile(
        os.path.join(folder, top, "__init__.py")
    )


def add_import_dir(folder: str) -> None:
    """`folder` first on the import path (as `python script.py` puts the script's)."""
    if folder not in sys.path:
        sys.path.insert(0, folder)


def check_builder_spec(spec: str, key: str = "model") -> None:
    """A ConfigError unless `spec`'s module exists and defines (or imports) its name
    (`key`: the field that names it, for the message)."""
    module_name, _, attr = spec.partition(":")
    on_import_path()
    hint = "is its folder the working directory or on PYTHONPATH?"
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:  # a parent package that fails to import
        first = (str(exc).splitlines() or [""])[0]
        raise ConfigError(
            f"{key} = {spec!r}: module {module_name!r} cannot be found "
            f"({type(exc).__name__}: {first}); {hint}"
        ) from None
    except Exception as exc:  # a parent package's __init__ raised: bad input, not ours
        first = (str(exc).splitlines() or [""])[0]
        raise ConfigError(
            f"{key} = {spec!r}: importing the package of {module_name!r} failed "
            f"({type(exc).__name__}: {first})"
        ) from None
    if found is None:
        raise ConfigError(f"{key} = {spec!r}: no module named {module_name!r}; {hint}")
    origin = found.origin or ""
    if not origin.endswith(".py"):
        return  # compiled or namespace module: nothing to read; the build will tell
    try:
        with open(origin, "rb") as fh:
            tree = ast.parse(fh.read(), origin)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConfigError(
            f"{key} = {spec!r}: {origin} cannot be read as Python ({type(exc).__name__}: {exc})"
        ) from None
    if attr not in _top_level_names(tree):
        raise ConfigError(f"{key} = {spec!r}: module {module_name!r} has no {attr!r}")


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level: functions, classes, assignments, imports;
    a star import or a module-level __getattr__ could bind anything."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return _ANYTHING
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With)):  # guarded definitions
            inner = _top_level_names(ast.Module(body=_bodies(node), type_ignores=[]))
            if inner is _ANYTHING:
                return _ANYTHING
            names.update(inner)
    return _ANYTHING if "__getattr__" in names else names


def _bodies(node: ast.stmt) -> list[ast.stmt]:
    out = list(getattr(node, "body", [])) + list(getattr(node, "orelse", []))
    out += list(getattr(node, "finalbody", []))
    for handler in getattr(node, "handlers", []):
        out += handler.body
    return out


class _Anything(set):
    def __contains__(self, item: object) -> bool:
        return True


_ANYTHING = _Anything()
