"""The run store: one SQLite file that runners write and viewers follow."""
