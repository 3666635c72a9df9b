"""Presets: TOML experiment files loaded strictly into frozen dataclasses.

A preset is data, never code:

    name = "quickstart"                       # optional, defaults to the file name
    description = "one line for the list"
    claim = "which figure or claim of the study it checks"
    seeds = 2                                 # every point runs with seeds seed, seed+1, ...
    trials = 8                                # random draws, needed when an axis is random
    objectives = ["val_mse", "train_s"]       # optional: a Pareto front (ranking metric first)
    full_note = "what the [full] version is" # optional
    needs_full = "why the quick version cannot answer its checks" # optional: the report says
    [config]                                  # the base Config, engine field names
    problem = "house"
    [sweep]                                   # axes: a grid list, or drawn per trial
    lr = [0.1, 0.01]
    weight_decay = { log_uniform = [1e-5, 1e-2] }   # also uniform, int_uniform (ints)
    activation = { choice = ["relu", "tanh"] }
    [full]                                    # optional overrides for the full version

Every refusal is a ConfigError that names the file, the key and, where one is close, a
suggestion.
"""

from __future__ import annotations

import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hypertui.engine.core.config import FIELDS, MAX_SEED, MODELS, Config, applies, check_jobs
from hypertui.engine.core.errors import ConfigError, suggest
from hypertui.engine.core.own_model import add_import_dir, beside
from hypertui.engine.core.paths import expand_user, user_presets_dir
from hypertui.engine.data.sources import checked_config
from hypertui.engine.sweeps.axes import (
    RANDOM_KINDS,
    RandomAxis,
    check_count,
    count_trials,
    expand_points,
    random_axis,
)
from hypertui.engine.sweeps.conditions import check_conditions, sometimes_moot

__all__ = ["RANDOM_KINDS", "Preset", "RandomAxis", "parse_preset"]

TOP_KEYS = (
    "name",
    "description",
    "claim",
    "checks",
    "seeds",
    "trials",
    "search",
    "batch",
    "jobs",
    "sweep_seed",
    "full_note",
    "needs_full",
    "objectives",
    "config",
    "sweep",
    "full",
)
# A name becomes part of file names (exports): letters, digits, '.', '_' and '-' only, so it
# can never name a folder or leave the exports folder.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RANDOM_FIELDS = ("lr", "momentum", "weight_decay", "time_budget_s", "target_scale")  # floats
INT_RANDOM_FIELDS = (
    "batch_size", "epochs", "train_samples", "patience", "prune_from", "prune_eta", "image_size",
)  # fmt: skip
LIST_FIELDS = ("hidden", "channels", "features")  # each value is itself a list


@dataclass(frozen=True)
class Trial:
    index: int  # position in the sweep, 0-based
    config: Config
    point: dict[str, Any]  # the swept values of this trial (JSON-ready), seed excluded


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    claim: str
    base: dict[str, Any]  # the [config] table as written (validated)
    axes: dict[str, list[Any] | RandomAxis]
    seeds: int = 1
    trials: int = 1  # random draws (1 when every axis is a grid)
    sweep_seed: int = 0
    full: dict[str, Any] = field(default_factory=dict)
    full_note: str = ""
    needs_full: str = ""  # why the quick version cannot answer its claims (the report says)
    source: str = ""  # the file it came from, or "" for built in code
    shipped: bool = True
    checks: tuple[str, ...] = ()  # the claim in checkable form (engine/analysis/claims.py)
    import_dir: str = ""  # the preset's folder, when its own model's module lives there
    # Several objectives (engine/analysis/pareto.py): the ranking metric, then what it trades
    # against, e.g. ("val_mse", "train_s"); () for one. A search over several reads these.
    objectives: tuple[str, ...] = ()
    # How trials are chosen (engine/sweeps/search.py): "random" (grid x draws, stored up
    # front) or "tpe" / "gp", which ask Optuna `batch` trials at a time (0: its default)
    search: str = "random"
    batch: int = 0  # trials asked at once by a learned search, e.g. 16
    jobs: int = 0  # units the local runner trains at once (0: what the machine suggests)

    def check_objectives(self) -> None:
        """Refuse objectives these runs do not report (the ranking metric first)."""
        if not self.objectives:
            return
        from hypertui.engine.analysis.pareto import check_objectives

        c = self.base_config
        try:
            check_objectives(list(self.objectives), c.problem, c.task, c.loss, c.main_metric)
        except ConfigError as exc:
            raise ConfigError(f"{self.source or self.name}: {exc}") from None

    @property
    def problem(self) -> str:
        return self.base_config.problem

    @property
    def base_config(self) -> Config:
        return checked_config(self.base)

    @property
    def swept(self) -> list[str]:
        """Fields that vary between trials, seed excluded."""
        return list(self.axes)

    @property
    def n_trials(self) -> int:
        folds = self.base.get("folds", 1) if isinstance(self.base.get("folds", 1), int) else 1
        if self.search != "random":  # a learned search: `trials` configs in all
            return self.trials * self.seeds * max(1, folds)
        return count_trials(self.axes, self.trials, self.seeds) * max(1, folds)

    def check_size(self) -> None:
        """Refuse a sweep too large to store or run, counted before anything is expanded."""
        check_count(self.n_trials, self.source or self.name)
        last_seed = self.base.get("seed", 0) + self.seeds - 1
        if isinstance(last_seed, int) and last_seed > MAX_SEED:
            raise ConfigError(
                f"{self.source or self.name}: seeds {self.seeds} from seed "
                f"{self.base.get('seed', 0)} reach {last_seed}, past the largest seed {MAX_SEED}"
            )

    def points(self) -> Iterator[tuple[dict[str, Any], Config]]:
        """Each grid point x random draw, with its config (seed: the base's), validated once.

        A preset's values are checked here: expanding them per seed as well would check
        the same config `seeds` times (10^4 trials took seconds before a sweep started)."""
        self.check_size()
        base = self.base_config.to_dict()
        moot = sometimes_moot(base, self.axes)

        def means_something(name: str, point: dict[str, Any]) -> bool:
            return name not in moot or applies(name, {**base, **point})

        # a field left out of a trial's point keeps its [config] value (or its default)
        for point in expand_points(self.axes, self.trials, self.sweep_seed, means_something):
            try:
                config = _make(self, {**base, **point})
            except ConfigError as exc:
                if not point:
                    raise
                at = ", ".join(f"{k} = {v!r}" for k, v in point.items())
                raise ConfigError(f"{exc} (with the sweep's {at})") from None
            yield point, config

    def validate(self) -> None:
        """Raise ConfigError unless every combination of the preset makes a valid config:
        first what its fields mean together (conditions.py), then each point."""
        try:
            check_conditions(self.base_config.to_dict(), self.axes)
        except ConfigError as exc:
            raise ConfigError(f"{self.source or self.name}: {exc}") from None
        for _ in self.points():
            pass

    def seeds_of(self, config: Config) -> range:
        """The seeds a point trains with: its config's own, then the next `seeds - 1`."""
        return range(config.seed, config.seed + self.seeds)

    def replicates_of(self, config: Config) -> Iterator[tuple[int, int]]:
        """(seed, fold) of each run of a point: every seed, and under it every fold
        (one fold, the config's, without cross-validation)."""
        folds = range(config.folds) if config.folds > 1 else (config.fold,)
        for seed in self.seeds_of(config):
            for fold in folds:
                yield seed, fold

    def expand(self) -> list[Trial]:
        """Every trial: grid points x random draws x seeds x folds, folds innermost."""
        trials: list[Trial] = []
        for point, config in self.points():
            for seed, fold in self.replicates_of(config):
                twin = config.with_seed(seed)
                if fold != twin.fold:
                    twin = twin.replace(fold=fold)
                trials.append(Trial(len(trials), twin, point))
        return trials

    def with_overrides(
        self,
        values: dict[str, Any] | None = None,
        seeds: int | None = None,
        full: bool = False,
    ) -> Preset:
        """A copy with `[full]` applied, then `values` fixed (a fixed field stops being swept)."""
        base, axes = dict(self.base), dict(self.axes)
        for key, value in {**(self.full if full else {}), **(values or {})}.items():
            if key in ("seeds", "trials"):
                continue
            if key not in FIELDS:
                raise ConfigError(_unknown(key, FIELDS, "config key"))
            base[key] = list(value) if isinstance(value, tuple) else value
            axes.pop(key, None)
        extra = {k: v for k, v in (self.full if full else {}).items() if k in ("seeds", "trials")}
        preset = Preset(
            **{
                **self.__dict__,
                "base": base,
                "axes": axes,
                "seeds": seeds if seeds is not None else extra.get("seeds", self.seeds),
                "trials": extra.get("trials", self.trials),
            }
        )
        if seeds is not None and seeds < 1:
            raise ConfigError(f"--seeds {seeds}: must be at least 1")
        try:
            _make(preset, base)
            preset.check_objectives()  # --set metric=... may move the ranking metric
            preset.check_size()
            if values or full:  # new combinations: validate each now, not mid-sweep
                preset.validate()
        except ConfigError as exc:
            if not values:
                raise
            # The file was valid on its own: the message must name the changes, not blame it.
            message = str(exc).removeprefix(f"{self.source or self.name}: ")
            changes = " ".join(f"{k}={v}" for k, v in values.items())
            raise ConfigError(f"{self.name} with {changes}: {message}") from None
        return preset


def _make(preset: Preset, values: dict[str, Any]) -> Config:
    try:
        return checked_config(values)
    except ConfigError as exc:
        raise ConfigError(f"{preset.source or preset.name}: {exc}") from None


def _unknown(key: str, valid, what: str) -> str:
    return f"unknown {what} {key!r}{suggest(key, valid)}"


def parse_preset(text: str, source: str, shipped: bool = False) -> Preset:
    """Parse and validate one preset's TOML text; `source` names it in every message."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested bracket
        raise ConfigError(f"{source}: invalid TOML: arrays or tables nested too deeply") from None

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{source}: {message}")

    for key in doc:
        if key not in TOP_KEYS:
            raise fail(_unknown(key, TOP_KEYS, "key") + f"; valid keys: {', '.join(TOP_KEYS)}")
    for key in ("description",):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise fail(f"{key!r} is required: one line saying what the preset compares")
    for key in ("name", "claim", "full_note", "needs_full"):
        if key in doc and not isinstance(doc[key], str):
            raise fail(f"{key} must be a string, got {doc[key]!r}")
    counts = {k: doc.get(k, d) for k, d in (("seeds", 1), ("trials", 1), ("sweep_seed", 0))}
    for key, value in counts.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (key != "sweep_seed" and value < 1)
        ):
            raise fail(f"{key} = {value!r}: must be an integer >= 1")
        if key == "sweep_seed" and not 0 <= value <= MAX_SEED:
            raise fail(f"sweep_seed = {value!r}: must be an integer in [0, {MAX_SEED}]")
    tables = {}
    for key in ("config", "sweep", "full"):
        tables[key] = doc.get(key, {})
        if not isinstance(tables[key], dict):
            raise fail(f"[{key}] must be a table")
    name = doc.get("name") or Path(source).stem
    if not NAME_PATTERN.fullmatch(name):
        raise fail(
            f"name = {name[:80]!r}: a preset name is 1-64 letters, digits, '.', '_' or '-' "
            "(it becomes part of file names)"
        )
    search, batch = _parse_search(doc, fail)
    jobs = _parse_jobs(doc, fail)
    if "train" in tables["config"]:  # your own function: its keys are its own
        if "objectives" in doc:
            raise fail("objectives name our problems' metrics; your own function has none yet")
        from hypertui.engine.sweeps.function_preset import parse_function_preset

        if search == "random":
            fp = parse_function_preset(doc, tables, counts, source, shipped, fail)
            return replace(fp, jobs=jobs)
        from hypertui.engine.sweeps.search import check_search

        if "trials" not in doc:
            raise fail(f"search = {search!r} needs trials = N (how many to ask in all)")
        random = dict(doc)
        random.pop("trials")  # its draws are the sampler's: checked as a grid of them
        has_random = any(isinstance(v, dict) for v in tables["sweep"].values())
        fp = parse_function_preset(
            doc if has_random else random, tables, counts, source, shipped, fail
        )
        check_search(search, fp.axes, (), source)
        return replace(fp, search=search, batch=batch, trials=counts["trials"], jobs=jobs)
    for key in tables["config"]:
        if key not in FIELDS:
            raise fail(f"[config] {_unknown(key, FIELDS, 'config key')}")
    for key in ("path", "val_path", "test_path"):
        where = tables["config"].get(key)
        if isinstance(where, str) and where and Path(source).is_file():
            # a relative data path is read from the preset's folder, wherever hypertui runs
            try:
                where = expand_user(where, f"{key} = {where!r}")
            except ConfigError as exc:
                raise fail(str(exc)) from None
            tables["config"][key] = str(Path(source).resolve().parent / where)
    model, import_dir = tables["config"].get("model"), ""
    if isinstance(model, str) and model not in MODELS and Path(source).is_file():
        folder = str(Path(source).resolve().parent)  # its module too, when it lives there
        if beside(model, folder):
            import_dir = folder
            add_import_dir(folder)
    for key in tables["full"]:
        if key not in FIELDS and key not in ("seeds", "trials"):
            raise fail(f"[full] {_unknown(key, [*FIELDS, 'seeds', 'trials'], 'key')}")
    try:
        checked_config(tables["config"])
    except ConfigError as exc:
        raise fail(f"[config] {exc}") from None

    axes: dict[str, list[Any] | RandomAxis] = {}
    for key, spec in tables["sweep"].items():
        axes[key] = _parse_axis(key, spec, fail)
    has_random = any(isinstance(a, RandomAxis) for a in axes.values())
    if search != "random":
        from hypertui.engine.sweeps.search import check_search

        if "trials" not in doc:
            raise fail(f"search = {search!r} needs trials = N (how many to ask in all)")
        check_search(search, axes, (), source)
    elif "trials" in doc and not has_random:
        raise fail("trials counts random draws, but no [sweep] axis is random")
    if has_random and "trials" not in doc:
        raise fail("a random [sweep] axis needs trials = N (how many draws)")

    preset = Preset(
        name=name,
        description=doc["description"].strip(),
        claim=doc.get("claim", "").strip(),
        base=tables["config"],
        axes=axes,
        seeds=counts["seeds"],
        trials=counts["trials"],
        sweep_seed=counts["sweep_seed"],
        full=tables["full"],
        full_note=doc.get("full_note", "").strip(),
        needs_full=doc.get("needs_full", "").strip(),
        source=source,
        shipped=shipped,
        checks=_parse_checks(doc.get("checks", []), tables, axes, fail),
        import_dir=import_dir,
        objectives=_parse_objectives(doc, tables["config"], fail),
        search=search,
        batch=batch,
        jobs=jobs,
    )
    preset.validate()  # every combination must make a valid config
    if preset.full:
        preset.with_overrides(full=True)
    return preset


def _parse_search(doc: dict, fail) -> tuple[str, int]:
    """search = "tpe" | "gp" | "random" (the default), and batch = K for a learned one."""
    from hypertui.engine.sweeps.search import SEARCHES

    search, batch = doc.get("search", "random"), doc.get("batch", 0)
    if not isinstance(search, str) or search not in SEARCHES:
        hint = suggest(search, SEARCHES) if isinstance(search, str) else ""
        raise fail(f"search = {search!r}{hint}: one of {', '.join(SEARCHES)}")
    if "batch" in doc:
        if search == "random":
            raise fail("batch counts trials asked at once by search = 'tpe' or 'gp'")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise fail(f"batch = {batch!r}: must be an integer >= 1")
    return search, batch


def _parse_jobs(doc: dict, fail) -> int:
    """jobs = N: units the local runner trains at once (`hypertui run --jobs` overrides)."""
    if "jobs" not in doc:
        return 0
    try:
        return check_jobs(doc["jobs"], "jobs =")
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _parse_checks(checks: Any, tables: dict, axes: dict, fail) -> tuple[str, ...]:
    from hypertui.engine.analysis.claims import parse_check

    if isinstance(checks, str):
        checks = [checks]
    if not isinstance(checks, list):
        raise fail(f"checks must be a list of strings, got {checks!r}")
    problem = checked_config(tables["config"]).problem
    values = {  # what a bare value in a check may name: a grid's values or a choice's
        k: list(a.values) if isinstance(a, RandomAxis) else a for k, a in axes.items()
    }
    for text in checks:
        try:
            parse_check(text, problem, values)
        except ConfigError as exc:
            raise fail(str(exc)) from None
    return tuple(" ".join(c.split()) for c in checks)


def _parse_objectives(doc: dict, config: dict, fail) -> tuple[str, ...]:
    if "objectives" not in doc:
        return ()
    from hypertui.engine.analysis.pareto import check_objectives

    c = checked_config(config)
    try:
        return check_objectives(doc["objectives"], c.problem, c.task, c.loss, c.main_metric)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _parse_axis(key: str, spec: Any, fail) -> list[Any] | RandomAxis:
    if key == "seed":
        raise fail("[sweep] seed: use seeds = N at the top level to repeat every point")
    if key == "metric":
        raise fail("[sweep] metric: a sweep ranks all its runs by one metric; set it in [config]")
    if key in ("fold", "folds"):
        raise fail(
            f"[sweep] {key}: folds say how every point is validated, not a setting to compare; "
            "set folds = K in [config] (each fold of each point is a run)"
        )
    if key not in FIELDS:
        raise fail(f"[sweep] {_unknown(key, FIELDS, 'config field')}")
    if isinstance(spec, list):
        if not spec:
            raise fail(f"[sweep] {key} = []: an axis needs at least one value")
        _check_values(key, spec, f"[sweep] {key}", fail)
        return spec
    if isinstance(spec, dict):
        kind = next(iter(spec)) if len(spec) == 1 else ""
        if kind in ("uniform", "log_uniform") and key not in RANDOM_FIELDS:
            raise fail(
                f"[sweep] {key}: {kind} draws floats, for {', '.join(RANDOM_FIELDS)}; "
                f"{{ choice = [a, b, ...] }} draws any field"
                + (", { int_uniform = [low, high] } an int" if key in INT_RANDOM_FIELDS else "")
            )
        if kind == "int_uniform" and key not in INT_RANDOM_FIELDS:
            raise fail(
                f"[sweep] {key}: int_uniform draws ints, for {', '.join(INT_RANDOM_FIELDS)}; "
                "{ choice = [a, b, ...] } draws any field"
            )
        axis = random_axis(key, spec, fail)
        if axis.kind == "choice":
            _check_values(key, list(axis.values), f"[sweep] {key}.choice", fail)
            return axis
        for bound in (axis.low, axis.high):
            try:
                Config(**{key: bound})
            except ConfigError as exc:
                raise fail(f"[sweep] {key}: {exc}") from None
        return axis
    raise fail(
        f"[sweep] {key} must be a list of values (a grid) or drawn per trial "
        f"({{ choice = [a, b] }}, {{ uniform = [low, high] }} ...), got {spec!r}"
    )


def parse_axis(key: str, spec: Any) -> list[Any] | RandomAxis:
    """One [sweep] entry as TOML reads it (a list, or `{ choice = [...] }`...), checked as
    a preset's are: the editor's sweep column, spelled its own way, ends here."""
    return _parse_axis(key, spec, ConfigError)


def _check_values(key: str, values: list[Any], where: str, fail) -> None:
    """Each value's type and range on its own; combinations are checked on expansion."""
    if key in LIST_FIELDS and not isinstance(values[0], list):
        lists = "[[10], [10, 10]]"
        example = f"{{ choice = {lists} }}" if where.endswith("choice") else lists
        raise fail(f"{where} takes a list of lists, e.g. {key} = {example}")
    for i, value in enumerate(values):
        try:
            Config(**{key: value})
        except ConfigError as exc:
            if "does not fit" in str(exc) or "needs problem" in str(exc):
                continue
            raise fail(f"{where}[{i}]: {exc}") from None


def load_preset_file(path: Path, shipped: bool = False) -> Preset:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read forever
            raise ConfigError(f"{path}: not a regular file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read preset: {exc}") from None
    return parse_preset(text, str(path), shipped)


@dataclass(frozen=True)
class Catalogue:
    presets: dict[str, Preset]  # by name; a user preset shadows a shipped one
    errors: dict[str, str]  # file -> message, for presets that failed to load


def shipped_preset_files() -> list[Path]:
    folder = resources.files("hypertui.presets")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def catalogue(user_dir: Path | None = None) -> Catalogue:
    """Shipped presets, then the user's (which may shadow them); bad files are collected."""
    presets: dict[str, Preset] = {}
    errors: dict[str, str] = {}
    folder = user_dir if user_dir is not None else user_presets_dir()
    user_files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    for path, shipped in [(p, True) for p in shipped_preset_files()] + [
        (p, False) for p in user_files
    ]:
        try:
            preset = load_preset_file(path, shipped)
        except ConfigError as exc:
            errors[str(path)] = str(exc)
            continue
        presets[preset.name] = preset
    return Catalogue(presets, errors)


def find_preset(name_or_path: str, user_dir: Path | None = None) -> Preset:
    """A preset by name, or a TOML file by path."""
    path = Path(expand_user(name_or_path, name_or_path))
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such preset file")
        return load_preset_file(path)
    cat = catalogue(user_dir)
    if name_or_path in cat.presets:
        return cat.presets[name_or_path]
    broken = [f for f in cat.errors if Path(f).stem == name_or_path]
    if broken:
        raise ConfigError(cat.errors[broken[0]])
    raise ConfigError(
        f"no preset named {name_or_path!r}{suggest(name_or_path, cat.presets)}; "
        "`hypertui presets` lists them"
    )


def preset_to_toml(preset: Preset) -> str:
    """TOML text for a preset (the TUI's "save as"); parse_preset reads it back unchanged.

    Written by tomli-w, never by string formatting: a hand-written writer emitted invalid
    TOML for a two-line description.
    """
    import tomli_w

    def value(v: Any) -> Any:
        if isinstance(v, RandomAxis):
            return value(v.spec())
        if isinstance(v, (list, tuple)):
            return [value(x) for x in v]
        if isinstance(v, dict):  # model_args: an inline table
            return {k: value(x) for k, x in v.items()}
        return v

    def table(items: dict[str, Any]) -> dict[str, Any]:
        return {k: value(v) for k, v in items.items() if v is not None}  # TOML has no null

    doc: dict[str, Any] = {"name": preset.name, "description": preset.description}
    if preset.claim:
        doc["claim"] = preset.claim
    if preset.checks:
        doc["checks"] = list(preset.checks)
    doc["seeds"] = preset.seeds
    if preset.search != "random" or any(isinstance(a, RandomAxis) for a in preset.axes.values()):
        doc |= {"trials": preset.trials, "sweep_seed": preset.sweep_seed}
    if preset.search != "random":
        doc["search"] = preset.search
        if preset.batch:
            doc["batch"] = preset.batch
    if preset.jobs:
        doc["jobs"] = preset.jobs
    if preset.full_note:
        doc["full_note"] = preset.full_note
    if preset.objectives:
        doc["objectives"] = list(preset.objectives)
    if preset.needs_full:
        doc["needs_full"] = preset.needs_full
    doc["config"] = table(preset.base)
    for name, items in (("sweep", preset.axes), ("full", preset.full)):
        if items:
            doc[name] = table(items)
    return tomli_w.dumps(doc)
