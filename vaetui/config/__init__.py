"""Run settings: what a setting is (fields), the settings declared once as dataclasses (settings), the named
presets (presets), and the one resolver every caller uses: preset, then overrides, then the resume rule (resolve)."""
