"""Training: devices, the clock, models, losses, and the two loops (one run, a population)."""
