"""Widgets of the vaetui app."""
