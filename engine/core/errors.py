"""The one exception type the engine raises for things a user can fix.

The CLI catches `HypertuiError`, prints its message and exits with status 2; anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HypertuiError(Exception):
    """Bad input: an impossible config, a malformed preset, missing data."""


class ConfigError(HypertuiError):
    """A config value, key or combination that cannot run."""


class DataError(HypertuiError):
    """A data set that cannot be found, read or verified."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def first_line(exc: BaseException) -> str:
    """What a one-line message quotes of an exception: its message's first line (a
    library's may run to many), or its type's name when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def described(exc: BaseException) -> str:
    """'TypeName: its first line', or the type's name alone when it says nothing."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {first_line(exc)}" if text else type(exc).__name__
