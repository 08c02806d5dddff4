"""Disentanglement of a code against known factors: MIG, DCI and SAP, with one stated protocol.

Inputs are plain arrays: codes (N, D) (the encoder's μ) and factors (N, K) (the synthetic
faces' generating factors, or CelebA's 40 binary attributes as a proxy). Every choice a
number depends on is in PROTOCOL and stored with the result.

- MIG (Chen et al. 2018): codes and factors discretised into BINS equal-frequency bins
  (a factor with at most BINS values keeps its own); for each factor the gap between the
  two largest mutual informations with a code dimension, over the factor's entropy; the mean.
- DCI (Eastwood & Williams 2018): importances R[j, k] = |coefficient| of code dimension j in
  a ridge regression (α = RIDGE) of standardised factor k on the standardised codes, fitted
  on the first half. Disentanglement: 1 − entropy (base K) of each code's row of R, weighted
  by the code's share of R; completeness: the same over each factor's column (base D);
  informativeness: the held-out R² of those regressions on the second half, averaged
  over factors (clipped at 0; higher is better).
- SAP (Kumar et al. 2018): S[j, k] = R² of a linear fit of factor k from code dimension j
  alone (the squared correlation, on the second half); per factor, the gap between the two
  largest; the mean.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

BINS = 20
RIDGE = 1e-2  # per image, on standardised variables: the penalty is RIDGE · n
PROTOCOL = {"bins": BINS, "binning": "equal-frequency", "regressor": f"ridge alpha={RIDGE}·n on standardised codes",
            "split": "first half fit, second half scored"}


def discretise(x: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column as integers 0..bins-1 by equal-frequency bins; a column with ≤ bins distinct values keeps them.

    Tied values always share a bin (a value's place is the centre of its run in sorted order, not where each
    copy happens to stand), and the bins are the same for a column and its negation: a centre on a bin boundary
    goes to the bin nearer the middle. (Splitting ties by sample order scored a perfect code of a 30-level factor
    0.996 and its negation 0.867.)
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        values, inverse, counts = np.unique(x[:, j], return_inverse=True, return_counts=True)
        if len(values) <= bins:
            out[:, j] = inverse.reshape(-1)
            continue
        centre = bins * (np.cumsum(counts) - counts / 2) / len(x)  # each value's run, in units of bins
        edge = np.where(centre < bins / 2, np.floor(centre), np.ceil(centre) - 1)
        out[:, j] = np.clip(edge, 0, bins - 1).astype(np.int64)[inverse.reshape(-1)]
    return out


def entropy(labels: np.ndarray) -> float:
    """Entropy in nats of a discrete column."""
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A columns, B columns) matrix of mutual information in nats between discrete columns."""
    n = len(a)
    out = np.zeros((a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        for k in range(b.shape[1]):
            joint = np.bincount(a[:, i] * (b[:, k].max() + 1) + b[:, k]).astype(np.float64) / n
            pa = np.bincount(a[:, i]) / n
            pb = np.bincount(b[:, k]) / n
            nz = np.nonzero(joint)[0]
            ia, ib = np.divmod(nz, b[:, k].max() + 1)
            out[i, k] = float((joint[nz] * np.log(joint[nz] / (pa[ia] * pb[ib]))).sum())
    return out


def _gaps(scores: np.ndarray) -> np.ndarray:
    """Per column: the largest entry minus the second largest."""
    if scores.shape[0] < 2:
        return scores[0].copy()
    top = np.sort(scores, axis=0)[::-1]
    return top[0] - top[1]


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> tuple[float, list[float]]:
    """Mutual information gap: (mean over factors, per factor); factors with zero entropy are left out (nan)."""
    dc, df = discretise(codes, bins), discretise(factors, bins)
    mi = mutual_information(dc, df)
    h = np.array([entropy(df[:, k]) for k in range(df.shape[1])])
    per = np.where(h > 0, _gaps(mi) / np.where(h > 0, h, 1.0), np.nan)
    valid = per[~np.isnan(per)]
    return (float(valid.mean()) if len(valid) else math.nan), per.tolist()


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


def _split(codes: np.ndarray, factors: np.ndarray):
    n = len(codes) // 2
    return codes[:n], codes[n:], factors[:n], factors[n:]


def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Row-wise entropy of rows of p (each summing to 1) in the given base."""
    if base < 2:
        return np.zeros(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(p), 0.0)
    return -(p * logs).sum(1) / math.log(base)


def dci(codes: np.ndarray, factors: np.ndarray, ridge: float = RIDGE) -> dict:
    """DCI disentanglement, completeness, informativeness, and the importance matrix (D, K)."""
    c_tr, c_te, f_tr, f_te = _split(np.asarray(codes, np.float64), np.asarray(factors, np.float64))
    c_tr, c_te = _standardise(c_tr, c_te)
    f_tr, f_te = _standardise(f_tr, f_te)
    d = c_tr.shape[1]
    w = np.linalg.solve(c_tr.T @ c_tr + ridge * len(c_tr) * np.eye(d), c_tr.T @ f_tr)  # (D, K)
    pred = c_te @ w
    resid = ((f_te - pred) ** 2).sum(0)
    total = ((f_te - f_te.mean(0)) ** 2).sum(0)
    r2 = np.where(total > 0, 1 - resid / np.where(total > 0, total, 1.0), np.nan)
    importance = np.abs(w)
    total_importance = importance.sum()
    if total_importance == 0:
        return {"disentanglement": 0.0, "completeness": 0.0, "informativeness": 0.0, "importance": importance.tolist()}
    rows = importance.sum(1)
    p_rows = importance / np.where(rows > 0, rows, 1.0)[:, None]
    disent = 1 - _normalised_entropy(p_rows, importance.shape[1])
    cols = importance.sum(0)
    p_cols = (importance / np.where(cols > 0, cols, 1.0)[None, :]).T
    complete = 1 - _normalised_entropy(p_cols, importance.shape[0])
    valid = r2[~np.isnan(r2)]
    return {
        "disentanglement": float((disent * rows / total_importance).sum()),
        "completeness": float((complete * cols / total_importance).sum()),
        "informativeness": float(np.clip(valid, 0, 1).mean()) if len(valid) else math.nan,
        "importance": importance.tolist(),
    }


def sap(codes: np.ndarray, factors: np.ndarray) -> float:
    """Separated attribute predictability: mean over factors of the gap between the two best single-code R²."""
    _, c_te, _, f_te = _split(np.asarray(codes, np.float64), np.asarray(factors, np.float64))
    c = c_te - c_te.mean(0)
    f = f_te - f_te.mean(0)
    cn, fn = np.sqrt((c**2).sum(0)), np.sqrt((f**2).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (c.T @ f) / np.outer(cn, fn)
    score = np.nan_to_num(corr**2)  # a constant code or factor predicts nothing
    keep = fn > 0
    return float(_gaps(score)[keep].mean()) if keep.any() else math.nan


def scores(codes: np.ndarray, factors: np.ndarray, names, kind: str = "factors") -> dict:
    """MIG, DCI and SAP of a code against named factors, with the protocol; kind 'attributes' marks a proxy."""
    codes, factors = np.asarray(codes, np.float64), np.asarray(factors, np.float64)
    m, per = mig(codes, factors)
    d = dci(codes, factors)
    return {
        "kind": kind, "count": len(codes), "factors": list(names), **PROTOCOL,
        "mig": m, "mig_per_factor": per,
        "dci_disentanglement": d["disentanglement"], "dci_completeness": d["completeness"],
        "dci_informativeness": d["informativeness"], "sap": sap(codes, factors),
    }


def summary_line(result: dict) -> str:
    """'MIG 0.12  DCI D 0.30 C 0.25 I 0.81  SAP 0.05', labelled as an attribute proxy where it is one."""
    proxy = " (attribute proxy)" if result.get("kind") == "attributes" else ""
    return (f"MIG {result['mig']:.3f}  DCI D {result['dci_disentanglement']:.3f} C {result['dci_completeness']:.3f} "
            f"I {result['dci_informativeness']:.3f}  SAP {result['sap']:.3f}{proxy}")


def factors_of(split, indices: np.ndarray) -> tuple[np.ndarray, list[str], str] | None:
    """(N, K) known factors of these images, their names, and 'factors' (synthetic) or 'attributes' (a proxy)."""
    if hasattr(split, "factors"):
        f = split.factors(indices)
        return np.stack([np.asarray(v, np.float64) for v in f.values()], 1), list(f), "factors"
    names = list(getattr(split, "attribute_names", []) or [])
    if not names:
        return None
    return split.attributes(indices).numpy().astype(np.float64), names, "attributes"


def disentanglement(model, split, n: int, batch_size: int = 64,
                    progress: Callable[[int, int, str], None] | None = None, first=None) -> dict | None:
    """MIG, DCI and SAP of μ on the first n images against the split's factors (or attributes); None without labels.
    first: μ of the split's first images when the caller has them (vaetui eval's), not encoded again."""
    import torch

    from vaetui.models.pixels import to_float

    n = min(n, len(split))
    known = factors_of(split, np.arange(n))
    if known is None or n < 4:
        return None
    device = next(model.parameters()).device
    mus = [] if first is None else [first[:n].double().cpu()]
    for start in range(0 if first is None else min(len(first), n), n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        with torch.no_grad():
            mus.append(model.encode(to_float(split.images(idx), device, channels_last=False))[0].float().double().cpu())
        if progress:
            progress(min(start + batch_size, n), n, "encoding for disentanglement")
    factors, names, kind = known
    return scores(torch.cat(mus).numpy(), factors, names, kind)
