"""The new-run form: every setting, checked as you type, Start refused until all are valid."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Select, Static

from vaetui.config.settings import (
    FAMILY_SETTINGS, FORM_FIELDS, SETTINGS_BY_KEY, SOME_FAMILIES_SETTINGS, RunConfig, setting,
)
from vaetui.config.presets import DEFAULT_PRESET, PRESETS, preset
from vaetui.config.resolve import resolve
from vaetui.errors import ConfigError, InvalidName, VaeError
from vaetui.ui.widgets.keybar import KeyBar

# The form's fields come from the one list of settings (vaetui.config.settings): label, type, choices. The first is
# the model (the family): a setting only some families read is shown for those alone.
_CHOICES = [(n, setting(n).form, list(setting(n).choices)) for n in FORM_FIELDS if setting(n).choices]
SELECTS = _CHOICES[:1] + [("preset", "preset", list(PRESETS))] + _CHOICES[1:]
SETTING_SELECTS = [row for row in SELECTS if row[0] != "preset"]
FIELDS = [(n, setting(n).form, setting(n)) for n in FORM_FIELDS if not setting(n).choices] + [("name", "run name", None)]


def _shown(s, value) -> str:
    if value is None:
        return ""
    if s.kind == "size":
        return f"{value[0]}x{value[1]}"
    if s.kind is float:
        return f"{value:g}"
    return str(value)


def unused(name: str, family: str) -> bool:
    """Is this form field one the chosen family does not read (hidden, and its text ignored)?"""
    return name in SOME_FAMILIES_SETTINGS and name not in FAMILY_SETTINGS.get(family, ())


def field_values(cfg: RunConfig) -> dict[str, str]:
    """What the form shows for a config."""
    values = {n: _shown(setting(n), cfg.get(n)) for n in FORM_FIELDS}
    values["name"] = ""
    return values


def parse_form(values: dict[str, str], runs_root: Path | None = None, threads_default: int | None = None
               ) -> tuple[RunConfig | None, str | None, dict[str, str]]:
    """(config, run name, errors by field) from the form's strings; config is None when any is invalid."""
    errors: dict[str, str] = {}
    try:
        base = preset(values.get("preset") or DEFAULT_PRESET)
    except ConfigError as exc:
        return None, None, {"preset": str(exc)}
    overrides: dict[str, object] = {}
    for key, _, _ in SETTING_SELECTS:
        overrides[key] = values.get(key) or base.get(key)
    for key, _, s in FIELDS:
        if s is None:
            continue
        text = (values.get(key) or "").strip()
        if key == "data_root" and overrides.get("data") == "synthetic":
            continue  # not used: whatever is typed there
        if unused(key, str(overrides["model"])):
            continue  # another family's setting: hidden, whatever it holds
        try:
            value = s.parse(text)
            if value is None and not s.optional:
                errors[key] = "required"
                continue
            if value is None and key == "threads":
                value = threads_default
            s.check(value)
            overrides[key] = value
        except ConfigError as exc:
            errors[key] = exc.message
    cfg = None
    if not errors:
        try:
            cfg = resolve(base.preset, overrides)
        except ConfigError as exc:
            known = SETTINGS_BY_KEY.get(exc.field)
            field = known.name if known is not None and known.name in FORM_FIELDS else "data"
            errors[field] = exc.message
    if cfg is not None and cfg.data.source != "synthetic":
        try:
            from vaetui.data.sources import file_index

            file_index(cfg.data)  # the data root is checked before start
        except VaeError as exc:
            errors["data_root"] = str(exc)
            cfg = None
    name = (values.get("name") or "").strip() or None
    if name is not None:
        from vaetui.runs.store import validate_name

        try:
            validate_name(name)
            if runs_root is not None and (Path(runs_root) / name / "config.json").exists():
                errors["name"] = f"run {name} already exists"
        except InvalidName as exc:
            errors["name"] = exc.reason
    if errors:
        cfg = None
    return cfg, name, errors


class NewRunScreen(Screen[None]):
    """Preset, data and every training setting; invalid values are marked inline."""

    BINDINGS = [Binding("ctrl+s", "start", "start"), Binding("escape", "app.show_runs", "runs")]

    def compose(self) -> ComposeResult:
        yield Header()
        initial = {"preset": DEFAULT_PRESET, **field_values(preset(DEFAULT_PRESET))}
        with VerticalScroll(id="form"):
            for key, label, options in SELECTS:
                with Horizontal(classes="row", id=f"row-{key}"):
                    yield Label(label, classes="flabel")
                    # Built with its value: a Select that starts elsewhere posts a Changed that would refill the form.
                    yield Select([(o, o) for o in options], id=f"f-{key}", allow_blank=False, classes="finput",
                                 value=initial[key])
                    yield Static("", id=f"e-{key}", classes="ferror")
            for key, label, _ in FIELDS:
                with Horizontal(classes="row", id=f"row-{key}"):
                    yield Label(label, classes="flabel")
                    yield Input(id=f"f-{key}", classes="finput")
                    yield Static("", id=f"e-{key}", classes="ferror")
            with Horizontal(id="buttons"):
                yield Button("Start", id="start", variant="success")
                yield Static("", id="form-status")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", "new run"
        self._filling = False
        self.fill(preset(DEFAULT_PRESET))
        self.query_one("#f-model", Select).focus()

    def fill(self, cfg: RunConfig) -> None:
        self._filling = True
        self._preset = cfg.preset
        values = field_values(cfg)
        self.query_one("#f-preset", Select).value = cfg.preset
        for key, _, _ in SETTING_SELECTS:
            self.query_one(f"#f-{key}", Select).value = values[key]
        for key, _, _ in FIELDS:
            self.query_one(f"#f-{key}", Input).value = values[key]
        if self.app.threads and not values["threads"]:
            self.query_one("#f-threads", Input).value = str(self.app.threads)
        self._filling = False
        self.check()

    def values(self) -> dict[str, str]:
        out = {key: str(self.query_one(f"#f-{key}", Select).value) for key, _, _ in SELECTS}
        out.update({key: self.query_one(f"#f-{key}", Input).value for key, _, _ in FIELDS})
        return out

    def check(self) -> tuple[RunConfig | None, str | None]:
        values = self.values()
        for key in SOME_FAMILIES_SETTINGS & set(FORM_FIELDS):
            self.query_one(f"#row-{key}").display = not unused(key, values["model"])
        cfg, name, errors = parse_form(values, self.app.store.root)
        for key in [k for k, _, _ in FIELDS] + [k for k, _, _ in SELECTS]:
            self.query_one(f"#e-{key}", Static).update(f"[red]{errors[key]}[/]" if key in errors else "")
            widget = self.query_one(f"#f-{key}")
            widget.set_class(key in errors, "invalid")
        self.query_one("#start", Button).disabled = cfg is None
        self.query_one("#form-status", Static).update(
            "[green]ready: ctrl+s or Start[/]" if cfg else f"[red]{len(errors)} setting(s) to fix[/]")
        return cfg, name

    def on_input_changed(self, event: Input.Changed) -> None:
        if not self._filling:
            self.check()

    def on_select_changed(self, event: Select.Changed) -> None:
        if self._filling:
            return
        if event.select.id == "f-preset" and event.value in PRESETS and event.value != self._preset:
            from vaetui.config.resolve import with_overrides

            # a preset is a network and its data: the family chosen above it stays
            self.fill(with_overrides(preset(str(event.value)), {"model": self.values()["model"]}))
        else:
            self.check()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def action_start(self) -> None:
        cfg, name = self.check()
        if cfg is None:
            self.notify("fix the marked settings first", severity="error")
            return
        try:
            from vaetui.models.memory import preflight

            preflight(cfg)  # a device, precision or batch this machine cannot take: said before a run exists
            run = self.app.store.create(cfg, name)
        except VaeError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.start_training(run)
