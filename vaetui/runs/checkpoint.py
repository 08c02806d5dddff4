"""Checkpoints: the format (what one holds, writing it, reading it back verified), which of a run's checkpoints to
load (the newest good one, a named one and its fallback), and a run's model loaded from one.

A checkpoint is a plain torch zip file (``torch.save``) of a dict:

    format          2
    config          the run's config.json text
    model           the network's state_dict (the plain model, never the DDP wrapper)
    optimizer       Adam's state_dict
    aux_optimizer   the Adam state_dict of a family's own-optimised part (FactorVAE's critic, VQ-VAE's prior)
    scaler          the fp16 GradScaler's state (empty when unused)
    noise_rng       the reparameterisation noise generator's state, and
    noise_device    the device type it belongs to (a CPU and a CUDA generator differ)
    step, epoch     where training stands
    lr_scale        learning-rate multiplier left by roll-backs
    best_valid      the best validation objective so far (at the run's final β)
    nonfinite_total, rollbacks   what went wrong so far
    epoch_sums      the running sums of the epoch in progress
    (step, lr_scale, best_valid, nonfinite_total, rollbacks and epoch_sums are the trainer's `Counters`)

It is loaded with ``weights_only=True`` after the zip's CRC-32 of every stored tensor is
verified, because ``torch.load`` alone loads flipped bits silently.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vaetui.errors import CheckpointError, NoCheckpointYet
from vaetui.disk.files import atomic_write_bytes

FORMAT = 2


@dataclass
class Counters:
    """The trainer's state a checkpoint carries besides weights, optimiser, scaler and noise: where the run is and
    what it went through. A field missing from an older checkpoint takes its default."""

    step: int = 0
    lr_scale: float = 1.0  # halved by each roll-back after non-finite losses
    best_valid: float = math.inf  # the best validation loss so far (at the final β)
    nonfinite_total: int = 0  # training steps skipped for a non-finite loss
    rollbacks: int = 0
    epoch_sums: list = field(default_factory=lambda: [0.0, 0.0, 0.0, 0])  # loss, recon, KL, images of the epoch


def capture(*, config, model, optimizer, scaler, noise, device_type: str, epoch: int, counters: Counters,
            aux_optimizer=None) -> dict[str, Any]:
    """The payload of a checkpoint (the format above)."""
    return {
        "format": FORMAT, "config": config.to_json(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(), "noise_rng": noise.get_state(), "noise_device": device_type, "epoch": epoch,
        **{**asdict(counters), "epoch_sums": list(counters.epoch_sums)},
        **({"aux_optimizer": aux_optimizer.state_dict()} if aux_optimizer is not None else {}),
    }


def restore(state: dict[str, Any], *, model, optimizer, scaler, aux_optimizer=None) -> Counters:
    """Load weights, optimiser(s) and scaler from a payload; returns its counters (older formats get defaults)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if aux_optimizer is not None:
        if "aux_optimizer" not in state:
            raise CheckpointError("the checkpoint holds no optimiser for the model's aux part: it is another family's")
        aux_optimizer.load_state_dict(state["aux_optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    d = Counters()
    return Counters(
        step=int(state["step"]), lr_scale=float(state.get("lr_scale", d.lr_scale)),
        best_valid=float(state.get("best_valid", d.best_valid)),
        nonfinite_total=int(state.get("nonfinite_total", d.nonfinite_total)),
        rollbacks=int(state.get("rollbacks", d.rollbacks)), epoch_sums=list(state.get("epoch_sums", d.epoch_sums)),
    )


# ---------------------------------------------------------------------------- which checkpoint of a run
_KIND_ORDER = {"latest": 0, "epoch": 1, "best": 2}  # on a tie of steps: latest, then epoch-N, then best


def epoch_files(folder: Path) -> list[Path]:
    """A run folder's ckpt-epoch-N.pt files, oldest first."""
    found = []
    for p in Path(folder).glob("ckpt-epoch-*.pt"):
        m = re.match(r"ckpt-epoch-(\d+)\.pt$", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def step_of(path: Path) -> int | None:
    """The step a checkpoint holds, read without loading it; None when it cannot be read."""
    info = peek(path)
    return int(info["step"]) if info and "step" in info else None


def ranked(folder: Path) -> list[tuple[Path, int | None]]:
    """A run folder's checkpoints with the step each holds, newest first by step (latest, then epoch-N, then best
    on ties); those whose step cannot be read (damaged) come last, so they are tried only when nothing else is left."""
    folder = Path(folder)
    paths = [folder / "ckpt-latest.pt", *epoch_files(folder), folder / "ckpt-best.pt"]
    order = []
    for p in paths:
        if not p.exists():
            continue
        kind = "epoch" if p.name.startswith("ckpt-epoch-") else p.stem.removeprefix("ckpt-")
        step = step_of(p)
        order.append((-(step if step is not None else -1), _KIND_ORDER.get(kind, 3), p.name, p, step))
    return [(r[3], r[4]) for r in sorted(order)]


def resolve(folder: Path, which: str | Path) -> Path:
    """A label (best, latest, epoch-N) or a path -> the file it names in a run folder (which may not exist)."""
    text = str(which)
    if isinstance(which, Path) or "/" in text or text.endswith(".pt"):
        p = Path(which)
        return p if p.is_absolute() or p.exists() else Path(folder) / text
    if not re.fullmatch(r"best|latest|epoch-\d+", text):
        raise CheckpointError(f"--checkpoint {text!r}: use best, latest, epoch-N or a path to a .pt file")
    return Path(folder) / f"ckpt-{text}.pt"


def load_from(folder: Path, run_name: str, which: str | Path | None = None, map_location: str = "cpu",
              fallback: bool = True) -> tuple[dict[str, Any], Path, list[str]]:
    """Load one of a run's checkpoints, verified: (payload, path used, warnings about files skipped).

    which=None: the newest good checkpoint by step (what resume and roll-back use).
    which named: that file; with fallback, a missing or damaged one is replaced by the
    newest good other one (with a warning); without, it is an error.
    """
    order_ranked = ranked(folder)
    order = [p for p, _ in order_ranked]
    warnings: list[str] = []
    if which is None:
        # A truncated, empty or foreign file ranks last and would never be tried while a good one exists:
        # say so all the same, as a bit-flipped one (which is tried, and fails its checksum) is reported.
        warnings += [f"{p} is truncated, empty or not a vaetui checkpoint" for p, step in order_ranked if step is None]
        order = [p for p, step in order_ranked if step is not None]
    else:
        first = resolve(folder, which)
        if not first.exists():
            if not fallback:
                have = ", ".join(p.stem.removeprefix("ckpt-") for p in order) or "none yet"
                raise CheckpointError(f"run {run_name} has no checkpoint {first.name} (it has: {have})")
            warnings.append(f"{first.name} is missing")
        order = [first] + [p for p in order if p != first] if fallback else [first]
    for path in order:
        if not path.exists():
            continue
        try:
            return load(path, map_location), path, warnings
        except CheckpointError as exc:
            if not fallback:
                raise
            warnings.append(str(exc))
    if not order_ranked and not any(p.exists() for p in order):
        raise NoCheckpointYet(f"run {run_name} has no checkpoint yet: train it first (vaetui train --resume {run_name})")
    raise CheckpointError(f"no usable checkpoint in {folder}: " + "; ".join(warnings))


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
    from vaetui.models.families import family_of

    config = run.config()
    if which is None:
        # no best yet (a run before its first validation): the newest good checkpoint is its best, said without a warning
        best = "best" if run.checkpoint_path("best").exists() else None
        state, path, warnings = run.load_checkpoint(best, map_location=device, fallback=True)
    else:
        state, path, warnings = run.load_checkpoint(which, map_location=device, fallback=False)
    model = family_of(config).build(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match run {run.name}'s network ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval(), config, path, warnings


@dataclass(frozen=True)
class LoadedModel:
    """A run's network from one checkpoint, in eval mode, with what was skipped to get it."""

    run: Any
    model: Any  # torch.nn.Module
    config: Any  # RunConfig
    path: Path  # the checkpoint file used
    warnings: tuple[str, ...] = ()


def open_model(run, which: str | None = None, device: str = "cpu") -> LoadedModel:
    """load_model for exploring (the screens and their twins), as a named object; loaded without autograd, readied
    for forward passes (`vaetui.models.inference`: BatchNorm folded, channels_last, the run's precision on this
    machine)."""
    import torch

    from vaetui.models.inference import for_inference
    from vaetui.runtime import resolve_precision

    with torch.no_grad():
        model, config, path, warnings = load_model(run, which, device)
    precision = resolve_precision(config.train.precision, torch.device(device))
    return LoadedModel(run, for_inference(model, precision, copy_first=False), config, path, tuple(warnings))
