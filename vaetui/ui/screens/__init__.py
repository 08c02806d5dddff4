"""Screens of the vaetui app."""
