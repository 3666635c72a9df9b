"""`python -m hypertui`: the same as the `hypertui` command."""

from hypertui.tui.cli.main import main

raise SystemExit(main())
