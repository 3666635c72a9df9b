"""hypertui's engine: data, models, training, the run store, analysis and sweeps.

Layers, each importing only those below it (checked by the import-linter contracts in
pyproject.toml):

    sweeps     presets, estimates, a sweep's units and backends (Ray in sweeps/ray), the
               runner process, the study report, the LR range test
    analysis   comparisons, significance, importance, claims, exports: on run records
    store      the SQLite run store and the follower that replays it as events
    training   devices, clock, models, losses, the single-run and population loops
    data       data sets as tensors on the device
    core       errors, ids, events, controls, config, paths, run records (stdlib only)

Headless by contract: nothing here imports textual, rich or plotext.
"""
