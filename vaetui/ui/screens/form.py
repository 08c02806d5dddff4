"""The new-run form: every setting, checked as you type, Start refused until all are valid."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from vaetui.config import PRESETS, RunConfig, preset, with_overrides
from vaetui.errors import ConfigError, VaeError

# (key, label, kind) in form order; keys are the CLI's override names.
FIELDS = [
    ("data_root", "data root", str),
    ("size", "image size", str),
    ("latent", "latent size", int),
    ("beta", "β", float),
    ("kl_warmup", "KL warm-up steps", int),
    ("lr", "learning rate", float),
    ("batch_size", "batch size", int),
    ("epochs", "epochs", int),
    ("dataset_size", "images per epoch", int),
    ("seed", "seed", int),
    ("threads", "threads", int),
    ("name", "run name", str),
]
SELECTS = [
    ("preset", "preset", list(PRESETS)),
    ("data", "data", ["synthetic", "celeba", "folder"]),
    ("precision", "precision", ["fp32", "bf16", "fp16"]),
]


def field_values(cfg: RunConfig) -> dict[str, str]:
    """What the form shows for a config."""
    h, w = cfg.data.size
    return {
        "data_root": cfg.data.root or "", "size": f"{h}x{w}", "latent": str(cfg.model.latent),
        "beta": f"{cfg.train.beta:g}", "kl_warmup": str(cfg.train.kl_warmup), "lr": f"{cfg.train.lr:g}",
        "batch_size": str(cfg.train.batch_size), "epochs": str(cfg.train.epochs),
        "dataset_size": "" if cfg.data.dataset_size is None else str(cfg.data.dataset_size),
        "seed": str(cfg.train.seed), "threads": "" if cfg.train.threads is None else str(cfg.train.threads),
        "name": "", "data": cfg.data.source, "precision": cfg.train.precision,
    }


def parse_form(values: dict[str, str], runs_root: Path | None = None, threads_default: int | None = None
               ) -> tuple[RunConfig | None, str | None, dict[str, str]]:
    """(config, run name, errors by field) from the form's strings; config is None when any is invalid."""
    errors: dict[str, str] = {}
    try:
        base = preset(values.get("preset") or "faces64")
    except ConfigError as exc:
        return None, None, {"preset": str(exc)}
    overrides: dict[str, object] = {"data": values.get("data") or base.data.source,
                                    "precision": values.get("precision") or base.train.precision}
    kinds = {k: kind for k, _, kind in FIELDS}
    for key, kind in kinds.items():
        text = (values.get(key) or "").strip()
        if key == "name":
            continue
        if text == "":
            if key in ("dataset_size", "threads", "data_root"):
                overrides[key] = None if key != "threads" else threads_default
                continue
            errors[key] = "required"
            continue
        try:
            overrides[key] = kind(text)
        except ValueError:
            errors[key] = f"not {'an integer' if kind is int else 'a number'}"
    clean = {k: v for k, v in overrides.items() if k not in errors}
    # Validate each field alone so each gets its own message.
    for key, value in clean.items():
        if value is None or key in ("data", "precision"):
            continue
        try:
            with_overrides(base, {key: value}).validate() if key != "data_root" else None
        except ConfigError as exc:
            if exc.field != "data.root":
                errors[key] = str(exc).split(": ", 1)[-1]
    cfg = None
    if not errors:
        try:
            cfg = with_overrides(base, {k: v for k, v in clean.items() if v is not None}).validate()
        except ConfigError as exc:
            field = {"data.root": "data_root", "data.dataset_size": "dataset_size", "data.size": "size"}.get(
                exc.field, exc.field.split(".")[-1])
            errors[field if field in kinds else "data"] = str(exc).split(": ", 1)[-1]
    if cfg is not None and cfg.data.source != "synthetic":
        try:
            from vaetui.data.sources import file_index

            file_index(cfg.data)  # the data root is checked before start
        except VaeError as exc:
            errors["data_root"] = str(exc)
            cfg = None
    name = (values.get("name") or "").strip() or None
    if name is not None:
        from vaetui.runs import validate_name

        try:
            validate_name(name)
            if runs_root is not None and (Path(runs_root) / name / "config.json").exists():
                errors["name"] = f"run {name} already exists"
        except VaeError as exc:
            errors["name"] = str(exc).split(":", 1)[-1].strip()
    if errors:
        cfg = None
    return cfg, name, errors


class NewRunScreen(Screen[None]):
    """Preset, data and every training setting; invalid values are marked inline."""

    BINDINGS = [Binding("ctrl+s", "start", "start"), Binding("escape", "app.show_runs", "runs")]

    def compose(self) -> ComposeResult:
        yield Header()
        initial = {"preset": "faces64", **field_values(preset("faces64"))}
        with VerticalScroll(id="form"):
            for key, label, options in SELECTS:
                with Horizontal(classes="row"):
                    yield Label(label, classes="flabel")
                    # Built with its value: a Select that starts elsewhere posts a Changed that would refill the form.
                    yield Select([(o, o) for o in options], id=f"f-{key}", allow_blank=False, classes="finput",
                                 value=initial[key])
                    yield Static("", id=f"e-{key}", classes="ferror")
            for key, label, _ in FIELDS:
                with Horizontal(classes="row"):
                    yield Label(label, classes="flabel")
                    yield Input(id=f"f-{key}", classes="finput")
                    yield Static("", id=f"e-{key}", classes="ferror")
            with Horizontal(id="buttons"):
                yield Button("Start", id="start", variant="success")
                yield Static("", id="form-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "vaetui", "new run"
        self._filling = False
        self.fill(preset("faces64"))
        self.query_one("#f-preset", Select).focus()

    def fill(self, cfg: RunConfig) -> None:
        self._filling = True
        self._preset = cfg.preset
        values = field_values(cfg)
        self.query_one("#f-preset", Select).value = cfg.preset
        for key in ("data", "precision"):
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
        cfg, name, errors = parse_form(self.values(), self.app.store.root)
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
            self.fill(preset(str(event.value)))
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
            run = self.app.store.create(cfg, name)
        except VaeError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.start_training(run, resume=False)
