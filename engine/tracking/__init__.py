"""Your own training loop in the store: `hypertui.init` and the `Run` it returns.

Above the store (it writes runs there) and below the sweeps (a sweep of your own function
hands each trial a `Run`); the standard library only, so `import hypertui` costs no torch.
"""
