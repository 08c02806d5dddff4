"""The models the explore screens show, loaded once per (run, checkpoint): torch loads with the first of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaetui.runs.checkpoint import LoadedModel


class ModelCache:
    """Loaded models by (run, checkpoint), so switching screens does not reload."""

    def __init__(self):
        self._models: dict[tuple[str, str | None], LoadedModel] = {}

    def get(self, store, run_name: str, checkpoint: str | None) -> LoadedModel:
        key = (run_name, checkpoint)
        if key not in self._models:
            import gc

            from vaetui.runs.checkpoint import open_model

            self._models[key] = open_model(store.open(run_name), checkpoint)
            gc.freeze()  # torch is loaded now: keep full collections from walking its objects
        return self._models[key]
