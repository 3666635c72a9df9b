from hypertui.tui.cli.main import main

raise SystemExit(main())
