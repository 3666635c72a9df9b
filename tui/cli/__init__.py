"""The `hypertui` command: argument parsing, headless runs and the printed reports."""
