"""The Textual app. Only this package (and cli.py) may import textual."""
