"""hypertui's user interfaces: the command line (`cli/`) and the Textual app (`app/`).

`text/` holds what both print: safe terminal text and the run and sweep tables.
"""
