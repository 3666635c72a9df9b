"""User text on a terminal: never markup, never control sequences.

Preset names, descriptions, failure reasons and config values come from files anyone can
write. Printed through Rich or Textual they would be parsed as markup (`[/red]` in a name
crashed `hypertui runs`), and an escape sequence in a description would reach the terminal.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape as _escape
from rich.text import Text

# C0 and C1 control characters, DEL included; tab and newline are handled by `clean`.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: Any, one_line: bool = True) -> str:
    """`value` as text with control characters removed (newlines become spaces if one_line)."""
    text = str(value)
    if one_line:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub("", text)


def plain(value: Any, style: str = "", one_line: bool = True) -> Text:
    """A Rich Text that shows `value` literally, whatever brackets it holds."""
    return Text(clean(value, one_line), style=style)


def escape(value: Any, one_line: bool = True) -> str:
    """`value` cleaned and escaped, to sit inside a markup string."""
    return _escape(clean(value, one_line))
