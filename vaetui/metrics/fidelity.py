"""Distances between two sets of feature vectors: Fréchet distance, KID, and k-NN precision/recall.

Pure numpy on (N, F) arrays, whatever network made the features (vaetui.metrics.features's
attribute network for "FD-attr", Inception-v3 for FID through torchmetrics).

- Fréchet distance: ‖μa − μb‖² + Tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½), the square root of a
  symmetric PSD matrix by its eigendecomposition (no scipy).
- KID (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel
  k(x, y) = (x·y / F + 1)³, averaged over `subsets` random subsets of `subset_size`.
- Precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
  balls around its points with radius the distance to the k-th nearest neighbour within
  the set; precision = share of generated points inside the real manifold, recall =
  share of real points inside the generated one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

KID_SUBSETS, KID_SUBSET_SIZE = 10, 1000
PR_K = 3


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, F)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    root = _sqrtm_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum()
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    f = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / f + 1) ** 3, ((y @ y.T) / f + 1) ** 3, ((x @ y.T) / f + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float]:
    """Kernel inception distance (mean, std over subsets); 0 in expectation for sets from one distribution."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = [_mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _sq_distances(x: np.ndarray, y: np.ndarray, exact_chunk: int = 65536) -> np.ndarray:
    """Squared distances: by expansion (|x|² + |y|² − 2x·y, one matrix product), and again by exact differences
    where the expansion's rounding error could be as large as the distance itself (near-duplicates: a collapsed
    decoder's identical samples got k-NN radii of rounding noise, not 0)."""
    nx, ny = (x**2).sum(1), (y**2).sum(1)
    d = nx[:, None] + ny[None, :] - 2 * x @ y.T
    scale = nx[:, None] + ny[None, :]
    i, j = np.nonzero(d <= 1e-9 * scale)
    for start in range(0, len(i), exact_chunk):
        ii, jj = i[start : start + exact_chunk], j[start : start + exact_chunk]
        d[ii, jj] = ((x[ii] - y[jj]) ** 2).sum(1)
    return np.clip(d, 0, None)


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    d = _sq_distances(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def _coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray, chunk: int = 1024) -> float:
    inside = 0
    for start in range(0, len(queries), chunk):
        d = _sq_distances(queries[start : start + chunk], manifold)
        inside += int((d <= radii[None, :]).any(1).sum())
    return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_K) -> tuple[float, float]:
    """Improved precision and recall (k-NN manifolds) of generated features `fake` against `real`."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    k = min(k, len(real) - 1, len(fake) - 1)
    precision = _coverage(real, _radii(real, k), fake)
    recall = _coverage(fake, _radii(fake, k), real)
    return precision, recall


def compare(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> dict:
    """FD, KID (mean, std), precision and recall of `fake` against `real` features."""
    kid_mean, kid_std = kid(real, fake, seed=seed)
    precision, recall = precision_recall(real, fake)
    return {"fd": frechet_distance(real, fake), "kid": kid_mean, "kid_std": kid_std,
            "precision": precision, "recall": recall, "count": min(len(real), len(fake)), "pr_k": PR_K,
            "kid_subsets": KID_SUBSETS, "kid_subset_size": min(KID_SUBSET_SIZE, len(real), len(fake))}


def samples_summary(s: dict, detail: bool = False) -> str:
    """'FD-attr 1.23  KID-attr 0.004  precision 0.71 recall 0.55', with (detail) the counts and FID or how to get it."""
    a = s["attr"]
    line = f"FD-attr {a['fd']:.3f}  KID-attr {a['kid']:.4f}  precision {a['precision']:.3f} recall {a['recall']:.3f}"
    if not detail:
        return line + (f"  FID {s['inception']['fd']:.2f}" if "inception" in s else "")
    from vaetui.config.settings import SAMPLER_SHORT

    source = SAMPLER_SHORT.get(s.get("protocol", {}).get("sampler", "prior"), "prior")
    line += f"  ({a['count']} {source} samples vs {a['count']} images, attribute-network features)"
    if "inception" in s:
        i = s["inception"]
        line += f"\n           FID {i['fd']:.2f}  KID {i['kid']:.4f}  precision {i['precision']:.3f} recall {i['recall']:.3f}"
    else:
        from vaetui.metrics.features import INCEPTION_HINT

        line += f"\n           (no FID: {INCEPTION_HINT})"
    return line


def sample_quality(model, config, split, n: int = 2000, seed: int = 0, inception_weights=None,
                   progress: Callable[[int, int, str], None] | None = None, mixture=None, sampler: str = "prior"
                   ) -> dict:
    """FD-attr, KID and precision/recall of n prior samples (or samples of a fitted mixture: vaetui.models.samplers)
    against the first n images of the split.

    The feature space is the dataset's attribute network (vaetui.metrics.features, trained once and
    cached); with inception_weights also standard FID/KID in Inception-v3 pool features.
    """
    import torch

    from vaetui.data import open_split
    from vaetui.metrics import features as attrnet

    n = min(n, len(split))
    device = next(model.parameters()).device
    if mixture is None:
        gen = torch.Generator(device=device).manual_seed(seed)
        z = model.prior_sample(n, gen)  # the model's own prior (N(0, I), or vamp's mixture)
    else:
        z = mixture.sample(n, torch.Generator().manual_seed(seed)).to(device)

    def fakes(idx):
        with torch.no_grad():
            return model.decode(z[torch.as_tensor(idx, device=device)]).float().cpu()

    precision = attrnet.native_precision()
    net = attrnet.attribute_net(config.data, open_split(config.data, "train"), progress, precision)
    from vaetui.config.settings import SAMPLER_SHORT

    source = ("the model's prior, temperature 1" if mixture is None else
              f"{SAMPLER_SHORT[sampler]}, {len(mixture.weights)} components, temperature 1")
    out = {"protocol": {"count": n, "seed": seed, "prior": source, "sampler": "prior" if mixture is None else sampler,
                        "attribute_net": {**attrnet.PROTOCOL, "precision": precision}}}
    out["attr"] = compare(attrnet.features(net, split.images, n), attrnet.features(net, fakes, n), seed)
    if inception_weights:
        inception = attrnet.InceptionFeatures(inception_weights)
        out["inception"] = compare(attrnet.features(inception, split.images, n, 32),
                                            attrnet.features(inception, fakes, n, 32), seed)
    return out
