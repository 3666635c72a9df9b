"""The Textual app: screens, widgets and the live follower."""
