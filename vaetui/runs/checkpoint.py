"""The checkpoint format: what a checkpoint holds, writing it, and reading it back verified.

A checkpoint is a plain torch zip file (``torch.save``) of a dict:

    format          2
    config          the run's config.json text
    model           the network's state_dict (the plain model, never the DDP wrapper)
    optimizer       Adam's state_dict
    scaler          the fp16 GradScaler's state (empty when unused)
    noise_rng       the reparameterisation noise generator's state, and
    noise_device    the device type it belongs to (a CPU and a CUDA generator differ)
    step, epoch     where training stands
    lr_scale        learning-rate multiplier left by roll-backs
    best_valid      the best validation objective so far (at the run's final β)
    nonfinite_total, rollbacks   what went wrong so far
    epoch_sums      the running sums of the epoch in progress

It is loaded with ``weights_only=True`` after the zip's CRC-32 of every stored tensor is
verified, because ``torch.load`` alone loads flipped bits silently.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from vaetui.errors import CheckpointError
from vaetui.disk.files import atomic_write_bytes

FORMAT = 2


def capture(*, config, model, optimizer, scaler, noise, device_type: str, step: int, epoch: int, lr_scale: float,
            best_valid: float, nonfinite_total: int, rollbacks: int, epoch_sums: list) -> dict[str, Any]:
    """The payload of a checkpoint (the format above)."""
    return {
        "format": FORMAT, "config": config.to_json(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(), "noise_rng": noise.get_state(), "noise_device": device_type, "step": step,
        "epoch": epoch, "lr_scale": lr_scale, "best_valid": best_valid, "nonfinite_total": nonfinite_total,
        "rollbacks": rollbacks, "epoch_sums": list(epoch_sums),
    }


def restore(state: dict[str, Any], *, model, optimizer, scaler) -> dict[str, Any]:
    """Load weights, optimiser and scaler from a payload; returns its counters (older formats get defaults)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return {
        "step": int(state["step"]), "lr_scale": float(state.get("lr_scale", 1.0)),
        "best_valid": float(state.get("best_valid", math.inf)),
        "nonfinite_total": int(state.get("nonfinite_total", 0)), "rollbacks": int(state.get("rollbacks", 0)),
        "epoch_sums": list(state.get("epoch_sums", [0.0, 0.0, 0.0, 0])),
    }


def restore_noise(state: dict[str, Any], noise, device_type: str, reseed: int) -> str | None:
    """Put the noise generator back; on another device, reseed it (returns a note saying so)."""
    saved_on = state.get("noise_device")
    if saved_on in (None, device_type):
        try:
            noise.set_state(state["noise_rng"].cpu())
            return None
        except (RuntimeError, KeyError, AttributeError):
            saved_on = saved_on or "another device"
    # A CPU generator's state is 5 KB of Mersenne twister, a CUDA one's 16 bytes of seed and offset:
    # neither fits the other, so the noise is re-derived deterministically from (seed, step, rank).
    noise.manual_seed(reseed)
    return (f"resumed on {device_type} from a checkpoint whose noise generator was on {saved_on}: "
            "reseeded it from (seed, step, rank)")


def encode(payload: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file."""
    import torch

    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save(path: Path, payload: dict[str, Any] | bytes) -> Path:
    """Write a checkpoint (a payload, or bytes from encode) atomically."""
    data = payload if isinstance(payload, (bytes, bytearray, memoryview)) else encode(payload)
    return atomic_write_bytes(path, data)


def load(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Verify a checkpoint's zip CRCs, then torch.load it with weights_only=True."""
    import zipfile

    import torch

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError, OSError):
        raise CheckpointError(f"{path} is truncated or not a checkpoint") from None
    except Exception as exc:  # zlib errors and friends on damaged data
        raise CheckpointError(f"{path} is damaged ({type(exc).__name__})") from None
    if bad is not None:
        raise CheckpointError(f"{path} is corrupt (checksum mismatch in {bad})")
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} cannot be loaded ({type(exc).__name__}: {exc})"[:300]) from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path} is not a vaetui checkpoint")
    return payload


def _peeker():
    """An Unpickler that builds nothing: every class and tensor is an opaque stand-in (no code runs)."""
    import pickle

    class _Opaque:
        """Stands in for every class and tensor while peeking: nothing is constructed, no code runs."""

        def __init__(self, *args, **kwargs):
            pass

        def __setstate__(self, state):
            pass

        def __setitem__(self, key, value):
            pass

        def append(self, value):
            pass

        def extend(self, values):
            pass

    class _Dict(dict):
        """OrderedDict stand-in: a state_dict's metadata arrives through __setstate__ and is dropped."""

        def __setstate__(self, state):
            pass

    class Peeker(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if (module, name) in (("collections", "OrderedDict"), ("builtins", "dict")):
                return _Dict
            return _Opaque

        def persistent_load(self, pid):
            return None

    return Peeker


def peek(path: Path) -> dict[str, Any] | None:
    """The plain numbers of a checkpoint (step, epoch, ...) without reading its tensors; None if unreadable.

    Reads only the zip's small pickle (its CRC is checked by zipfile): milliseconds even for
    a large model, so the newest of several checkpoints can be found cheaply.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            name = next((n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if name is None:
                return None
            raw = zf.read(name)
        top = _peeker()(io.BytesIO(raw)).load()
    except Exception:  # damaged in any way: the caller skips it
        return None
    if not isinstance(top, dict):
        return None
    return {k: v for k, v in top.items() if isinstance(v, (int, float, str))}


CHECKPOINT_CHOICES = "best, latest, epoch-N or a path"


def load_model(run, which: str | None = None, device: str = "cpu"):
    """The run's model from a checkpoint, in eval mode: (model, config, checkpoint path, warnings).

    which=None: best, falling back to the newest good checkpoint when best is missing or
    damaged. A named checkpoint (best, latest, epoch-N, a path) is that one or an error.
    """
    from vaetui.models.vae import ConvVAE

    config = run.config()
    if which is None:
        # no best yet (a run before its first validation): the newest good checkpoint is its best, said without a warning
        best = "best" if run.checkpoint_path("best").exists() else None
        state, path, warnings = run.load_checkpoint(best, map_location=device, fallback=True)
    else:
        state, path, warnings = run.load_checkpoint(which, map_location=device, fallback=False)
    model = ConvVAE.from_config(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        from vaetui.errors import CheckpointError

        raise CheckpointError(f"{path} does not match run {run.name}'s network ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), config, path, warnings
