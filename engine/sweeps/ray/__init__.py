"""Sweeps on Ray (the optional `hypertui[ray]` extra): imported only when a sweep asks."""
