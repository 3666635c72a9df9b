"""The app's screens: presets, editor, live, results (and runs), detail, history, dialogs."""
