"""What logging KL per latent dimension costs: time per training step and bytes per step event, in one run.

The trainer adds each batch's KL per dimension (summed over images, on the device) to the sums it already keeps,
and reads them back with the rest once per log interval. This measures that addition beside a whole training step
of the same network and batch (the faces64 preset at latent 32 and the seed's 100), and the step event's size
with and without the vector, as vaetui writes it.

    python bench/kl_dims_cost.py [--rounds 5] [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from vaetui.config.presets import preset
    from vaetui.config.resolve import with_overrides
    from vaetui.models.families import family_of
    from vaetui.models.losses import kl_per_dim
    from vaetui.runs.events import StepEvent

    for latent in (32, 100):
        cfg = with_overrides(preset("faces64"), {"latent": latent})
        family = family_of(cfg)
        model = family.build(cfg)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x = torch.rand(64, 3, 64, 64)
        step_s, dims_s = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            for _ in range(args.steps):
                out = model(x)
                terms = family.objective(out, x, 1.0, cfg, 60000)
                opt.zero_grad()
                terms.loss.backward()
                opt.step()
            step_s.append((time.perf_counter() - t) / args.steps)
            acc = torch.zeros(latent)
            t = time.perf_counter()
            for _ in range(args.steps):
                with torch.no_grad():
                    acc += kl_per_dim(out.mu.float(), out.logvar.float()).sum(0)
            dims_s.append((time.perf_counter() - t) / args.steps)
        ratios = [d / s for d, s in zip(dims_s, step_s)]
        base = dict(step=100, epoch=1, epoch_step=100, steps_per_epoch=937, total_steps=11244, loss=7312.5,
                    recon=7290.1, kl=22.4, beta=1.0, lr=1e-3, nats_per_dim=0.595, bits_per_dim=0.858,
                    images_per_s=512.3, elapsed=12.5, nonfinite=0)
        vec = [float(f"{v:.4g}") for v in kl_per_dim(out.mu, out.logvar).mean(0).tolist()]
        plain = len(json.dumps(StepEvent(**base).to_json())) + 1
        with_dims = len(json.dumps(StepEvent(**base, kl_dims=vec).to_json())) + 1
        print(f"latent {latent}: step {statistics.median(step_s) * 1e3:.1f} ms, KL per dim "
              f"{statistics.median(dims_s) * 1e6:.0f} µs = {statistics.median(ratios) * 100:.3f}% of a step "
              f"(rounds: {', '.join(f'{r * 100:.3f}%' for r in ratios)}); step event {plain} -> {with_dims} bytes "
              f"(+{with_dims - plain})")


if __name__ == "__main__":
    main()
