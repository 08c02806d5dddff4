"""Feature spaces for sample quality: the attribute network (always offline) and Inception-v3 (a local file).

The attribute network is a small CNN that vaetui trains once per dataset on the dataset's
own labels (the synthetic faces' 16 factors by regression, CelebA's 40 attributes by
logistic loss), on images brought to 64x64. Its 256-d penultimate layer is the feature
space of "FD-attr": a Fréchet distance in a space that knows what faces vary in, never
to be called FID. It is cached in the cache folder (VAETUI_CACHE_DIR) with its protocol,
keyed by the dataset, so every run on that data is measured with the same network.

Standard FID and KID use Inception-v3 through torchmetrics, from weights the user points
at (`--inception-weights FILE`, the pt_inception-2015-12-05 file); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vaetui.errors import DataError, VaeError
from vaetui.disk.files import atomic_write_bytes, cache_dir
from vaetui.models import convgrad
from vaetui.models.pixels import to_float
from vaetui.disk.locks import file_lock

SIDE = 64
FEATURES = 256
PROTOCOL = {"version": 1, "input": f"{SIDE}x{SIDE} bilinear (antialiased)", "net": "conv 32-64-128-256 stride 2, BN, "
            "ReLU, global mean pool", "features": FEATURES, "optimiser": "Adam lr 1e-3", "batch": 128, "epochs": 3,
            "images": 20000, "seed": 0}
INCEPTION_HINT = ("FID needs Inception-v3 weights on this machine: download pt_inception-2015-12-05-6726825d.pth "
                  "(github.com/mseitzer/pytorch-fid/releases) elsewhere, copy it here and pass "
                  "--inception-weights FILE")


class AttributeNet(nn.Module):
    """Images in [0, 1] -> 256 features -> one output per label."""

    def __init__(self, labels: int):
        super().__init__()
        layers, c_in = [], 3
        for c in (32, 64, 128, FEATURES):
            layers += [convgrad.Conv2d(c_in, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(FEATURES, labels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(resize(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resize(x: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == (SIDE, SIDE):
        return x
    return F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", antialias=True, align_corners=False)


def labels_of(split, indices: np.ndarray) -> tuple[torch.Tensor, str]:
    """Targets for the attribute network: ('regression', factors in [0, 1]) or ('binary', attributes)."""
    from vaetui.metrics.disentangle import factors_of

    known = factors_of(split, indices)
    if known is None:
        raise DataError("this dataset has no labels (no factors, no attributes): FD-attr needs them; add an "
                        "attributes.csv to the folder, or use --inception-weights for FID")
    values, _, kind = known
    return torch.from_numpy(values.astype(np.float32)), "regression" if kind == "factors" else "binary"


def dataset_key(data_config, precision: str = "fp32") -> str:
    """One attribute network per dataset (source, folder, seed, size, geometry), protocol and training precision
    (fp32 networks keep the key they had before precision was part of it)."""
    ident = {"source": data_config.source, "root": str(Path(data_config.root).resolve()) if data_config.root else None,
             "seed": data_config.seed, "size": list(data_config.size), "geometry": data_config.geometry,
             "protocol": PROTOCOL, **({"precision": precision} if precision != "fp32" else {})}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def native_precision() -> str:
    """The precision the attribute network trains in on this machine: bf16 where the CPU has it natively (2.0x the
    fp32 loop on a 2-core AMX host: bench/README.md, Evaluation), fp32 elsewhere. Its features are always computed
    in fp32."""
    from vaetui.runtime import resolve_precision

    return resolve_precision("auto", torch.device("cpu"))


def train_attribute_net(split, progress: Callable[[int, int, str], None] | None = None,
                        protocol: dict = PROTOCOL, precision: str = "fp32") -> AttributeNet:
    """Train the attribute network on the first `images` of a split by its labels (seeded, deterministic order),
    as training runs the VAE: channels_last, the bias gradients outside oneDNN (vaetui.models.convgrad), in
    `precision` (bf16 autocast, or fp32)."""
    from vaetui.models.inference import precision_context

    n = min(protocol["images"], len(split))
    torch.manual_seed(protocol["seed"])
    probe, kind = labels_of(split, np.arange(1))
    net = AttributeNet(probe.shape[1]).to(memory_format=torch.channels_last)  # as training runs the VAE
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss() if kind == "regression" else nn.BCEWithLogitsLoss()
    batch = protocol["batch"]
    steps_per_epoch = max(1, n // batch)
    total = protocol["epochs"] * steps_per_epoch
    g = torch.Generator().manual_seed(protocol["seed"])
    net.train()
    step = 0
    for _ in range(protocol["epochs"]):
        order = torch.randperm(n, generator=g).numpy()
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * batch : (b + 1) * batch])
            x = to_float(split.images(idx), channels_last=True)
            y, _ = labels_of(split, idx)
            with precision_context(precision, x.device):
                out = net(x)
            loss = loss_fn(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if progress and (step % 10 == 0 or step == total):
                progress(step, total, "training the attribute network (once per dataset)")
    # features from the network trained now and from the one loaded from the cache next time: the same layout, the
    # same numbers
    return net.to(memory_format=torch.contiguous_format).eval()


def attribute_net(data_config, train_split, progress=None, precision: str | None = None) -> AttributeNet:
    """The cached attribute network of this dataset, trained first when there is none (one process at a time), in
    `precision` (default: this machine's native_precision)."""
    precision = precision or native_precision()
    folder = cache_dir() / "features"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} ({exc.strerror}): set VAETUI_CACHE_DIR to a writable folder") from None
    path = folder / f"attrnet-{dataset_key(data_config, precision)}.pt"
    with file_lock(path.with_suffix(".lock")):
        if path.exists():
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                net = AttributeNet(saved["labels"])
                net.load_state_dict(saved["model"])
                return net.eval()
            except (OSError, RuntimeError, KeyError, EOFError, ValueError, pickle.UnpicklingError):
                path.unlink(missing_ok=True)  # damaged: train it again
        net = train_attribute_net(train_split, progress, precision=precision)
        buf = io.BytesIO()
        torch.save({"model": net.state_dict(), "labels": net.head.out_features, "protocol": PROTOCOL,
                    "precision": precision}, buf)
        atomic_write_bytes(path, buf.getvalue())
        atomic_write_bytes(path.with_suffix(".json"), json.dumps({"protocol": PROTOCOL, "precision": precision},
                                                                 indent=2).encode())
    return net


@torch.no_grad()
def features(net: nn.Module, images: Callable[[np.ndarray], torch.Tensor], n: int, batch: int = 128) -> np.ndarray:
    """(n, F) features of images(indices) -> float images in [0, 1] (or uint8)."""
    out = []
    for start in range(0, n, batch):
        x = to_float(images(np.arange(start, min(start + batch, n))), channels_last=False)
        out.append(net.features(x).double().numpy())
    return np.concatenate(out)


def _tensors_only(path: Path) -> dict[str, torch.Tensor]:
    """A state dict read from a file a user named: weights_only=True (no code runs), tensors under string keys only."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a refused pickle, a torn zip, a directory: all "not weights"
        raise VaeError(f"--inception-weights {path} could not be loaded ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:120] if str(exc) else 'not a weights file'}). {INCEPTION_HINT}") \
            from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise VaeError(f"--inception-weights {path} is not a state dict of tensors. {INCEPTION_HINT}")
    return state


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features (2048) from a local weights file, through torchmetrics (never downloaded)."""

    def __init__(self, weights: Path):
        super().__init__()
        weights = Path(weights)
        if not weights.is_file():
            raise VaeError(f"--inception-weights {weights}: no such file. {INCEPTION_HINT}")
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as exc:
            raise VaeError(f"FID needs torchmetrics with torch-fidelity ({exc}): pip install 'torchmetrics[image]'") \
                from None
        state = _tensors_only(weights)
        try:
            # torch-fidelity's constructor unpickles the path it is given with no restriction, which would run code
            # in a crafted file: it only ever sees a file written here from tensors already read with
            # weights_only=True (_tensors_only).
            import tempfile

            with tempfile.TemporaryDirectory(prefix="vaetui-inception-") as tmp:
                clean = Path(tmp) / "weights.pth"
                torch.save(state, clean)
                self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                              feature_extractor_weights_path=str(clean))
        except Exception as exc:  # noqa: BLE001 - a wrong file fails in many ways inside torch-fidelity
            raise VaeError(f"--inception-weights {weights} could not be loaded ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:120]}). {INCEPTION_HINT}") from None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.clamp(0, 1) * 255).round().to(torch.uint8)).reshape(len(x), -1)
