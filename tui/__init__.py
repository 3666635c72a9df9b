"""hypertui's user interfaces: the headless CLI (`cli.py`) and the Textual app (`app.py`)."""
