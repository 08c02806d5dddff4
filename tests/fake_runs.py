"""Deterministic runs on disk for UI tests: config, metrics.jsonl and snapshot images, no training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from vaetui.config.presets import preset
from vaetui.config.resolve import with_overrides
from vaetui.data.synthetic import SyntheticFaces
from vaetui.models.protocol import LatentModel, ModelOutput
from vaetui.pictures.imaging import save_image, stack_rows

FIXED_TIME = 1_790_000_000.0  # 2026-09-21, so "updated" columns are the same everywhere


def make_finished_run(root: Path, name: str = "faces-demo", steps: int = 60, spe: int = 20, model: str = "vae",
                      terms: tuple[str, ...] = ()) -> Path:
    """A finished-looking run with smooth loss curves and three image snapshots (with `terms`: a family's own terms,
    the k-th of them falling from 10·(k+1) nats)."""
    cfg = with_overrides(preset("faces64"), {"epochs": 3, "dataset_size": spe * 64, "model": model})
    path = Path(root) / name
    (path / "snapshots").mkdir(parents=True)
    (path / "config.json").write_text(cfg.to_json())
    faces = SyntheticFaces((64, 64), split="valid").images(np.arange(8))
    events = [{"type": "started", "step": 0, "time": FIXED_TIME, "run": name, "device": "cpu", "parameters": 1492899,
               "total_steps": steps, "steps_per_epoch": spe, "resumed": False, "threads": 2, "precision": "fp32"}]
    for step in range(1, steps + 1):
        loss = 3000 + 6000 * np.exp(-step / 12)
        events.append({"type": "step", "step": step, "time": FIXED_TIME + step, "epoch": (step - 1) // spe + 1,
                       "epoch_step": (step - 1) % spe + 1, "steps_per_epoch": spe, "total_steps": steps,
                       "loss": loss, "recon": loss - 40, "kl": 40.0, "beta": 1.0, "lr": 1e-3,
                       "nats_per_dim": loss / 12288, "bits_per_dim": loss / 12288 / 0.6931, "images_per_s": 250.0,
                       "elapsed": step * 0.25, "nonfinite": 0,
                       **({"terms": {t: 10.0 * (k + 1) * (1 + np.exp(-step / 12)) for k, t in enumerate(terms)}}
                          if terms else {})})
        if step % 20 == 0 and step <= 200:
            k = max(1, 9 - step // 10)
            blur = torch.nn.functional.avg_pool2d(faces.float(), k, stride=1, padding=k // 2)[..., :64, :64]
            rel = f"snapshots/step-{step:08d}.png"
            save_image(stack_rows([faces, blur.round().to(torch.uint8), faces.flip(0)]), path / rel)
            events.append({"type": "images", "step": step, "time": FIXED_TIME + step, "path": rel})
        if step % spe == 0:
            epoch = step // spe
            events.append({"type": "epoch", "step": step, "time": FIXED_TIME + step, "epoch": epoch,
                           "train_loss": loss + 50, "valid_loss": loss + 80, "train_recon": loss + 10,
                           "train_kl": 40.0, "best": True})
            events.append({"type": "checkpoint", "step": step, "time": FIXED_TIME + step,
                           "path": str(path / "ckpt-latest.pt"), "label": "latest"})
    events.append({"type": "finished", "step": steps, "time": FIXED_TIME + steps, "epoch": 3, "reason": "completed"})
    (path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for f in path.rglob("*"):
        os.utime(f, (FIXED_TIME, FIXED_TIME))
    return path


class FixedPictures(LatentModel):
    """A stand-in network whose pictures and codes come out the same on every CPU, for snapshots of screen layout.

    A real decoder's pixels depend on the host's kernels (an AVX-512 host and an AVX2 one differ in the last bit,
    and now and then a half-block cell's colour): here every decoded pixel is a saturated logit (+-30, whose sigmoid
    is exactly 0 or 1 in float32) taken from a synthetic face, and every code is a fixed pattern of exact
    quarters. The pictures themselves are compared with the headless twins in test_explore.
    """

    def __init__(self, latent: int, size: tuple[int, int]):
        super().__init__()
        self.latent = latent
        self.image_size = tuple(size)
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # where a caller finds the device
        faces = SyntheticFaces(tuple(size), split="test").images(np.arange(16))
        self.register_buffer("signs", (faces > 127).float() * 60.0 - 30.0)

    def encode(self, x: torch.Tensor):
        k = torch.arange(len(x)).unsqueeze(1) * 7 + torch.arange(self.latent).unsqueeze(0) * 3
        mu = (k % 11 - 5).float() / 4.0
        return mu, torch.full_like(mu, -1.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.signs[torch.arange(len(z)) % len(self.signs)]

    def forward(self, x, generator=None, samples=1):
        mu, logvar = self.encode(x)
        return ModelOutput(self.decode_logits(mu), mu, logvar, mu)
