"""The engine's vocabulary: errors, ids, events, controls, configs, paths and run records.

Standard library only (no torch, sqlite or pandas), so validating a config or reading a
preset costs no heavy import.
"""
