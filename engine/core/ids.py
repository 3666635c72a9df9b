"""Ids for sweeps and runs: short hex strings that never read as numbers.

A hex id such as ``94937635`` or ``1e234567`` would be read back from a CSV
as an integer or a float by pandas and by spreadsheets, which then lose the
id (leading zeros dropped, ``1e234567`` becomes infinity). Every id therefore
holds at least one letter and never parses as a float.
"""

from __future__ import annotations

import uuid


def looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def new_id(length: int) -> str:
    """A random lowercase hex id of ``length`` characters that is not a number."""
    while True:
        candidate = uuid.uuid4().hex[:length]
        if not looks_numeric(candidate):
            return candidate
