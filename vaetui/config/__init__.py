"""Run settings: what a setting is (fields), the settings declared once (settings), presets, and the one resolver."""
