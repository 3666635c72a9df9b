"""Sweeps: presets, estimates, running a sweep's units locally or on Ray, the runner."""
