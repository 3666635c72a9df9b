"""What a sweep's runs say: comparisons, significance, importance, claims and exports.

Works on run records (hypertui.engine.core.records), never on the SQLite store itself.
"""
