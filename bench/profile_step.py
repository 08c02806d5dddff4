"""Where a training step's time goes: per layer (forward, backward, achieved GFLOP/s), per operator, page faults.

The seed network at its size, batch 64, the Trainer's own step (channels_last, the
engine's loss and optimiser), after warm-up steps. Layer times come from module hooks
around forward and backward; operator totals from torch.profiler; page faults from
getrusage (the allocator returning memory to the OS shows up there).

    python bench/profile_step.py [--size 218x178] [--precision fp32|bf16] [--threads 2] [--steps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="218x178")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--fused-adam", action="store_true")
    args = ap.parse_args()
    from vaetui.runtime import tune_allocator

    tune_allocator()
    import torch
    from torch import nn

    from vaetui.models.losses import vae_loss
    from vaetui.models.vae import ConvVAE

    torch.set_num_threads(args.threads)
    h, w = map(int, args.size.split("x"))
    model = ConvVAE((h, w), hidden=32, latent=100).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=args.fused_adam or None)
    x = torch.rand(64, 3, h, w).contiguous(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext

    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    fwd, bwd, flops = defaultdict(float), defaultdict(float), {}
    marks: dict[str, float] = {}

    def start(key):
        return lambda *_: marks.__setitem__(key, time.perf_counter())

    def stop(table, name, key):
        return lambda *_: table.__setitem__(name, table[name] + time.perf_counter() - marks[key])

    def count(name):
        def hook(m, inp, out):
            if isinstance(m, nn.Conv2d):
                flops[name] = 2 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            elif isinstance(m, nn.ConvTranspose2d):
                flops[name] = 2 * inp[0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            elif isinstance(m, nn.Linear):
                flops[name] = 2 * inp[0].shape[0] * m.in_features * m.out_features
        return hook

    def step():
        with autocast():
            out = model(x, gen)
        terms = vae_loss(out.logits, x, out.mu, out.logvar, 0.3)
        opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        opt.step()

    for _ in range(2):
        step()
    handles = []
    for name, m in leaves:
        handles += [m.register_forward_pre_hook(start("f:" + name)), m.register_forward_hook(stop(fwd, name, "f:" + name)),
                    m.register_full_backward_pre_hook(start("b:" + name)),
                    m.register_full_backward_hook(stop(bwd, name, "b:" + name)), m.register_forward_hook(count(name))]
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    total = (time.perf_counter() - t0) / args.steps
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / args.steps
    for hnd in handles:
        hnd.remove()

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    ops = defaultdict(float)
    calls = defaultdict(int)
    for e in prof.key_averages():
        ops[e.key] += e.self_cpu_time_total / 1000
        calls[e.key] += e.count

    n = args.steps
    print(f"{args.size} {args.precision}, batch 64, {args.threads} threads: {total * 1000:.0f} ms a step "
          f"({64 / total:.1f} images/s), {faults:,.0f} page faults a step")
    print(f"{'layer':<18} {'forward ms':>10} {'backward ms':>11} {'fwd GFLOP/s':>11} {'bwd GFLOP/s':>11}")
    shown_f = shown_b = 0.0
    for name, m in leaves:
        f, b = fwd[name] / n * 1000, bwd[name] / n * 1000
        shown_f, shown_b = shown_f + f, shown_b + b
        fl = flops.get(name)
        fg = f"{fl / (f / 1000) / 1e9:11.0f}" if fl and f > 0 else " " * 11  # fl counts the whole batch
        bg = f"{2 * fl / (b / 1000) / 1e9:11.0f}" if fl and b > 0 else " " * 11  # backward: 2x the forward
        if f + b > 0.5:
            print(f"{name:<18} {f:10.1f} {b:11.1f} {fg} {bg}")
    print(f"{'(all layers)':<18} {shown_f:10.1f} {shown_b:11.1f}   step {total * 1000:.0f} ms: "
          f"{total * 1000 - shown_f - shown_b:.0f} ms outside the layers (loss, optimiser, autograd bookkeeping)")
    print("operators by self time (one profiled step):")
    for key, ms in sorted(ops.items(), key=lambda kv: -kv[1])[:14]:
        print(f"  {key:<48} {ms:8.1f} ms  {calls[key]:5d} calls")
    syncs = sum(calls[k] for k in calls if k in ("aten::item", "aten::_local_scalar_dense"))
    print(f"read-backs (.item()/bool) in the step: {syncs}")


if __name__ == "__main__":
    main()
