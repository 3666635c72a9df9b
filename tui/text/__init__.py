"""Text both interfaces print: escaping of user strings and the run and sweep tables."""
