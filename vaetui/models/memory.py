"""Will a training run fit in memory? An estimate, checked before anything is started.

A run that does not fit would be killed by the kernel's out-of-memory killer (no error,
no checkpoint), so a batch or image size beyond the machine is refused up front with the
largest batch that fits.
"""

from __future__ import annotations

import math
import os

from vaetui.config.settings import RunConfig
from vaetui.errors import ConfigError

# Peak memory of a training step over (batch x the per-image sum of every layer's output x 4 bytes
# + parameters x 16 bytes for weights, gradients and Adam's two moments): measured 1.1-1.75 on
# this network (fp32, 64x64 to 218x178, batch 8 to 512); the high end is used.
ACTIVATION_FACTOR = 1.8
HEADROOM = 0.9  # of the memory available: the rest is for the data, the UI, the OS


def activations_per_image(config: RunConfig) -> int:
    """Numbers stored per image by one forward pass (conv, BatchNorm and activation outputs, and the heads)."""
    from vaetui.models.families import FAMILIES
    from vaetui.models.vae import DEPTH, decoder_paddings, encoder_sizes

    h, w = config.data.size
    c, latent = config.model.hidden, config.model.latent
    eh, ew = encoder_sizes(h), encoder_sizes(w)
    enc_ch = [c, 2 * c, 4 * c, 8 * c]
    total = sum(3 * enc_ch[i] * eh[i + 1] * ew[i + 1] for i in range(DEPTH))
    flat = 8 * c * eh[DEPTH] * ew[DEPTH]
    total += 2 * latent
    decoded = flat + 3 * h * w  # per decode: the decoder's input, its blocks (below) and its output
    pads, out_pad = decoder_paddings(h, w)
    dec_ch = [4 * c, 2 * c, c, c]
    dh, dw = eh[DEPTH], ew[DEPTH]
    for i, (ph, pw) in enumerate(pads):
        last = i == DEPTH - 1
        dh = 2 * dh + 2 - 2 * ph + (out_pad[0] if last else 0)
        dw = 2 * dw + 2 - 2 * pw + (out_pad[1] if last else 0)
        decoded += 3 * dec_ch[i] * dh * dw
    return total + decoded * FAMILIES[config.model.family].samples(config)  # IWAE decodes K codes an image


def parameters(config: RunConfig) -> int:
    """The network's parameter count, computed without building it."""
    from vaetui.models.vae import DEPTH, encoder_sizes

    h, w = config.data.size
    c, latent = config.model.hidden, config.model.latent
    enc = [3, c, 2 * c, 4 * c, 8 * c]
    n = sum(enc[i] * enc[i + 1] * 9 + enc[i + 1] + 2 * enc[i + 1] for i in range(DEPTH))
    flat = 8 * c * encoder_sizes(h)[DEPTH] * encoder_sizes(w)[DEPTH]
    n += 2 * (flat * latent + latent) + latent * flat + flat
    dec = [8 * c, 4 * c, 2 * c, c, c]
    n += sum(dec[i] * dec[i + 1] * 16 + dec[i + 1] + 2 * dec[i + 1] for i in range(DEPTH))
    return n + c * 3 * 9 + 3


def training_bytes(config: RunConfig, batch: int | None = None) -> int:
    """Estimated peak memory of one training step with this batch (default: the run's, split over processes)."""
    batch = batch if batch is not None else config.train.batch_size
    return int(ACTIVATION_FACTOR * (batch * activations_per_image(config) * 4 + parameters(config) * 16))


def available_bytes(device: str) -> int | None:
    """Memory free for a new run on this device: MemAvailable on the CPU, free GPU memory on CUDA."""
    if device.startswith("cuda"):
        try:
            import torch

            return int(torch.cuda.mem_get_info()[0])
        except Exception:
            return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def preflight(config: RunConfig, processes: int = 1) -> None:
    """Refuse, before anything is created, a run this machine cannot train: a device it lacks, a precision
    the device lacks, a step that does not fit in memory."""
    import torch

    device = config.train.device
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", "no CUDA GPU is visible: use --device cpu (or auto)")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if config.train.precision == "fp16" and device != "cuda":
        raise ConfigError("train.precision", "fp16 needs CUDA: use --precision bf16 on the CPU")
    check_fits(config, device, processes)


def estimated(config: RunConfig) -> bool:
    """Is there an estimate for this run's network (the seed's ConvVAE under a built-in objective)?"""
    from vaetui.config.settings import CONV_FAMILIES

    return config.model.family in CONV_FAMILIES


def check_fits(config: RunConfig, device: str = "cpu", processes: int = 1) -> None:
    """Refuse (ConfigError naming the batch size) a run whose step would not fit in memory (where it is estimated:
    a network of another shape, a user's own, finds out when it runs)."""
    if not estimated(config):
        return
    available = available_bytes(device)
    if available is None:
        return
    budget = HEADROOM * available
    local = max(1, config.train.batch_size // max(processes, 1))
    need = training_bytes(config, local)
    if need <= budget:
        return
    per_image = ACTIVATION_FACTOR * activations_per_image(config) * 4
    fixed = ACTIVATION_FACTOR * parameters(config) * 16
    fits = max(0, math.floor((budget - fixed) / per_image)) * max(processes, 1)
    h, w = config.data.size
    hint = f"use --batch-size {fits} or less" if fits >= 1 else "use a smaller --size or --hidden"
    raise ConfigError("train.batch_size", f"a batch of {config.train.batch_size} at {h}x{w} needs about "
                      f"{need / 2**30:.1f} GB on {device}, and {available / 2**30:.1f} GB are available: {hint}")
