"""The latent space: codes of a split, where generated codes come from (the prior, the VampPrior, an ex-post GMM
fitted once per checkpoint), and the latent screen's pictures (and `vaetui latent`'s): dimensions ranked by KL,
traversals, attribute vectors and their strips, the scatter of μ."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from vaetui.errors import VaeError
from vaetui.models.pixels import to_float
from vaetui.pictures.figures import Figure, _split, stack_pictures
from vaetui.pictures.imaging import frame, grid


@torch.no_grad()
def encode_split(model, config, split: str = "valid", count: int = 512):
    """μ and log σ² of the first `count` images of a split, with their attributes."""
    data = _split(config, split)
    count = min(count, len(data))
    device = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, count, 128):
        x = to_float(data.images(np.arange(start, min(start + 128, count))), device, channels_last=False)
        mu, logvar = model.encode(x)
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    names = list(getattr(data, "attribute_names", []))
    attrs = data.attributes(np.arange(count)).numpy() if names else np.zeros((count, 0), bool)
    return torch.cat(mus), torch.cat(logvars), names, attrs


def latent_ranking(mu: torch.Tensor, logvar: torch.Tensor) -> list[dict]:
    """Latent dimensions ranked by mean KL, with the spread of μ and whether each is active."""
    from vaetui.models.losses import kl_per_dim
    from vaetui.models.latent import ACTIVE_THRESHOLD

    kl = kl_per_dim(mu, logvar).mean(0)
    var = mu.var(0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    rows = [{"dim": j, "kl": float(kl[j]), "mu_std": float(var[j].sqrt()), "active": bool(var[j] > ACTIVE_THRESHOLD)}
            for j in range(mu.shape[1])]
    return sorted(rows, key=lambda r: -r["kl"])


@torch.no_grad()
def traversal(model, config, base: torch.Tensor, dim: int, sigmas=(-3, -2, -1, 0, 1, 2, 3), spread: float = 1.0) -> Figure:
    """Decode base with dimension `dim` moved to base[dim] + s·spread for each s (spread = σ of μ over the data)."""
    z = base.repeat(len(sigmas), 1)
    z[:, dim] = base[dim] + torch.tensor(sigmas, dtype=z.dtype) * spread
    device = next(model.parameters()).device
    images = model.decode(z.to(device)).cpu()
    return Figure(grid(images, ncol=len(sigmas)), {"dim": dim, "sigmas": list(sigmas), "spread": spread},
                  frames=[frame(img) for img in images])


@torch.no_grad()
def traversals(model, config, base: torch.Tensor, rows: list[tuple[int, float]], sigmas=(-3, -2, -1, 0, 1, 2, 3)) -> Figure:
    """Traversals of several dimensions, one row each: (dim, spread) per row (the first is the selected one)."""
    zs = []
    for dim, spread in rows:
        z = base.repeat(len(sigmas), 1)
        z[:, dim] = base[dim] + torch.tensor(sigmas, dtype=z.dtype) * spread
        zs.append(z)
    images = model.decode(torch.cat(zs).to(next(model.parameters()).device)).cpu()
    return Figure(grid(images, ncol=len(sigmas)), {"dims": [d for d, _ in rows], "sigmas": list(sigmas)},
                  frames=[frame(img) for img in images])


def attribute_vector(mu: torch.Tensor, names: list[str], attrs: np.ndarray, attribute: str) -> torch.Tensor:
    """mean μ of images with the attribute minus mean μ of those without ("more Smiling")."""
    if attribute not in names:
        raise VaeError(f"no attribute {attribute!r}; the data has: {', '.join(names) or 'none'}")
    on = torch.from_numpy(attrs[:, names.index(attribute)])
    if on.all() or not on.any():
        raise VaeError(f"attribute {attribute} is {'always' if on.all() else 'never'} set in these images")
    return mu[on].mean(0) - mu[~on].mean(0)


@torch.no_grad()
def attribute_strip(model, base: torch.Tensor, vector: torch.Tensor, amounts=(-2, -1, 0, 1, 2)) -> Figure:
    """Decode base + a·vector for each amount a."""
    z = base[None] + torch.tensor(amounts, dtype=base.dtype)[:, None] * vector[None]
    images = model.decode(z.to(next(model.parameters()).device)).cpu()
    return Figure(grid(images, ncol=len(amounts)), {"amounts": list(amounts)})


LATENT_IMAGES = 512  # validation images the latent screen (and `vaetui latent`) encode


def encode_latents(model, config, split: str = "valid", count: int = LATENT_IMAGES) -> tuple:
    """(μ, log σ², attribute names, attributes, dimensions ranked by KL) of the first images of a split."""
    if getattr(model, "latent_kind", "gaussian") != "gaussian":
        from vaetui.models.protocol import NOT_FOR_CODES

        raise VaeError(f"latent dimensions and their traversals are {NOT_FOR_CODES} (a VQ-VAE's code is a map of "
                       "codebook indices): explore it with g, i and r")
    mu, logvar, names, attrs = encode_split(model, config, split, count)
    return mu, logvar, names, attrs, latent_ranking(mu, logvar)


def latent_view(model, encoded: tuple, rank: int = 0, image: int = 0, dims: int = 1, attribute: int = 0,
                amount: float = 1.0, show_scatter: bool = False) -> Figure:
    """The latent screen's picture: ±3σ traversals of `dims` dimensions from the rank-th by KL, from image's μ,
    above the attribute vector strip (attribute: an index into the names, cycling) or the scatter of μ."""
    mu, logvar, names, attrs, ranking = encoded
    rank, image = max(0, min(rank, len(ranking) - 1)), max(0, min(image, len(mu) - 1))
    row, base = ranking[rank], mu[image]
    shown = ranking[rank : rank + max(dims, 1)]  # the selected dimension, then the next by KL
    parts = [traversals(model, None, base, [(r["dim"], max(r["mu_std"], 1e-3)) for r in shown]).image]
    name = names[attribute % len(names)] if names else None
    error = ""
    if show_scatter:
        parts.append(scatter(mu, names, attrs, name).image)
    elif name:
        try:
            vec = attribute_vector(mu, names, attrs, name)
            parts.append(attribute_strip(model, base, vec, [round(amount * k, 2) for k in (-2, -1, 0, 1, 2)]).image)
        except VaeError as exc:
            error = str(exc)
    return Figure(stack_pictures(parts), {"ranking": ranking, "row": row, "rank": rank, "image": image,
                                          "attribute": name, "attr_error": error})


def scatter(mu: torch.Tensor, names: list[str], attrs: np.ndarray, attribute: str | None, size: int = 320) -> Figure:
    """A scatter of μ's first two dimensions (and a second panel for the third), coloured by an attribute."""
    from PIL import ImageDraw

    dims = [(0, 1)] + ([(0, 2)] if mu.shape[1] >= 3 else [])
    img = Image.new("RGB", (size * len(dims) + 8 * (len(dims) - 1), size), (20, 20, 24))
    draw = ImageDraw.Draw(img)
    on = attrs[:, names.index(attribute)] if attribute in names else np.zeros(len(mu), bool)
    for p, (a, b) in enumerate(dims):
        x, y = mu[:, a].numpy(), mu[:, b].numpy()
        lo = np.array([x.min(), y.min()])
        span = np.maximum(np.array([x.max(), y.max()]) - lo, 1e-6)
        ox = p * (size + 8)
        draw.rectangle([ox, 0, ox + size - 1, size - 1], outline=(70, 70, 80))
        for xi, yi, hit in zip(x, y, on):
            px = ox + 6 + (xi - lo[0]) / span[0] * (size - 12)
            py = size - 6 - (yi - lo[1]) / span[1] * (size - 12)
            colour = (255, 170, 40) if hit else (90, 150, 255)
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
    return Figure(img, {"dims": dims, "attribute": attribute, "count": int(len(mu)), "on": int(on.sum())})


def sampler_mixture(run, model, config, checkpoint_path, sampler: str):
    """The mixture a sampler draws codes from: None for the model's own prior; the ex-post GMM (fitted once, kept in
    the run); the VampPrior (a vamp run's pseudo-inputs, or the posteriors of the first training images)."""
    from vaetui.config.settings import SAMPLERS

    if sampler not in SAMPLERS:
        raise VaeError(f"--sampler {sampler}: use one of {', '.join(SAMPLERS)}")
    if sampler != "prior" and getattr(model, "latent_kind", "gaussian") != "gaussian":
        raise VaeError(f"--sampler {sampler} draws continuous codes: run {run.name}'s code is discrete, use prior")
    if sampler == "gmm":
        return ex_post_gmm(run, model, config, checkpoint_path)
    if sampler == "vamp":
        return vamp_mixture(model, config)
    return None


@torch.no_grad()
def vamp_mixture(model, config):
    """The VampPrior: the posteriors of a vamp run's pseudo-inputs, or for another run those of its first training
    images (Tomczak & Welling's prior with the pseudo-inputs fixed to data)."""
    from vaetui.models.samplers import VAMP_DATA_IMAGES, posterior_mixture

    if hasattr(model, "components"):
        return posterior_mixture(*model.components())
    mus, logvars = encode_split(model, config, "train", VAMP_DATA_IMAGES)[:2]
    return posterior_mixture(mus, logvars)


GMM_PROTOCOL = {"split": "train", "images": 2048, "components": 10, "seed": 0}


def ex_post_gmm(run, model, config, checkpoint_path, protocol: dict = GMM_PROTOCOL):
    """The ex-post GMM of a run's checkpoint (Ghosh et al. 2020): fitted to the posterior means of the first training
    images, once, and kept as JSON beside the run's evals (in the cache for a read-only run) under a name that says
    its protocol and the checkpoint's step."""
    import json

    from vaetui.disk.files import atomic_write_bytes, cache_dir
    from vaetui.errors import FitError
    from vaetui.models.samplers import GaussianMixture, fit_gmm
    from vaetui.runs.checkpoint import step_of

    p, step = protocol, step_of(checkpoint_path)  # the zip's small pickle, read once
    name = (f"gmm-{checkpoint_path.stem.removeprefix('ckpt-')}-step{step}-{p['split']}"
            f"-n{p['images']}-k{p['components']}-s{p['seed']}.json")
    folder = cache_dir() / "samplers" / run.name if run.read_only else run.path / "samplers"
    path = folder / name
    try:
        return GaussianMixture.from_json(json.loads(path.read_text())["mixture"])
    except (OSError, ValueError, KeyError, TypeError, FitError):
        pass  # not fitted yet, or a damaged file (not JSON, not a mixture): fit it (again)
    with torch.no_grad():
        mus = encode_split(model, config, p["split"], p["images"])[0]
    mixture = fit_gmm(mus, p["components"], seed=p["seed"])
    record = {"protocol": {**p, "images": len(mus), "checkpoint": checkpoint_path.name, "step": step},
              "mixture": mixture.to_json()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(record).encode())
    except OSError:
        pass  # a folder we cannot write: the fit is used, not kept
    return mixture
