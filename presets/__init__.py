"""Shipped experiment presets: TOML data files, one per experiment of the study."""
