"""What a study found, for a person or a script: its trials, the best, importances, the rate–distortion picture.

`study_table` is what the study screen and `vaetui sweep show` both draw from; the
rate (KL) and distortion (reconstruction) of each trial come from its run's own history
(the last validation epoch), not from Optuna, so a trial still running shows where it is.
"""

from __future__ import annotations

import json

import sys
from pathlib import Path
from typing import Any

from vaetui.format import finite
from vaetui.studies.spec import METRICS, load_study, read_spec


def study_table(root: Path, name: str) -> dict[str, Any]:
    """The study as plain data: settings, one row per trial, the best trial, parameter importances."""
    from vaetui.errors import VaeError
    from vaetui.runs.store import Run

    spec = read_spec(root, name)
    study = load_study(root, spec, create=False)  # showing a study never writes to its storage
    rows = []
    for t in study.get_trials(deepcopy=False):
        run_name = t.user_attrs.get("run", "")
        epoch = recon = kl = valid = None
        if run_name and (Path(root) / run_name / "config.json").exists():
            try:
                h = Run(Path(root) / run_name).history(steps="none")
                if h.epochs:
                    last = h.epochs[-1]
                    epoch, valid, recon, kl = last.epoch, finite(last.valid_loss), finite(last.valid_recon), \
                        finite(last.valid_kl)
            except VaeError:
                pass
        rows.append({"number": t.number, "run": run_name, "state": t.state.name.lower(), "params": t.params,
                     "value": finite(t.value), "epoch": epoch, "valid_loss": valid,
                     "recon": recon, "kl": kl, "reason": t.user_attrs.get("reason", ""),
                     **({"eval": trial_eval(Path(root) / run_name)} if spec.evaluate and run_name else {})})
    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    pick = min if METRICS[spec.metric] == "minimize" else max
    best = pick(done, key=lambda r: r["value"]) if done else None
    return {"study": spec.name, "space": spec.space.to_json(), "metric": spec.metric,
            "direction": METRICS[spec.metric], "sampler": spec.sampler, "pruner": spec.pruner, "trials": spec.trials,
            "rows": rows, "best": best, "importances": importances(study, len(done))}


def trial_eval(path: Path) -> dict[str, Any]:
    """The numbers of a trial's evaluation (vaetui.studies.worker.evaluate_trial), from its run's stored evals: the
    bounds, PSNR/SSIM, its prior samples' and its GMM samples' quality, disentanglement ({} until it has one)."""
    from vaetui.runs.store import Run
    from vaetui.studies.spec import TRIAL_EVAL

    if not (path / "config.json").exists():
        return {}
    evals = Run(path).evals(split=TRIAL_EVAL["split"], count=TRIAL_EVAL["count"], k=TRIAL_EVAL["k"])
    prior = next((r for r in evals if "samples" in r and "sampler" not in r["protocol"]), None)
    gmm = next((r for r in evals if r["protocol"].get("sampler") == "gmm"), None)
    if prior is None:
        return {}
    out = {"neg_elbo": prior["per_image"]["neg_elbo"], "iwae_nll": prior["per_image"]["iwae_nll"],
           "recon": prior["per_image"]["recon"], "kl": prior["per_image"]["kl"], "psnr": prior["psnr"],
           "ssim": prior["ssim"], "fd_attr": prior["samples"]["attr"]["fd"],
           "precision": prior["samples"]["attr"]["precision"], "recall": prior["samples"]["attr"]["recall"]}
    if "disentanglement" in prior:
        out["mig"] = prior["disentanglement"]["mig"]
        out["dci"] = prior["disentanglement"]["dci_disentanglement"]
    if gmm is not None:
        out["gmm_fd_attr"] = gmm["samples"]["attr"]["fd"]
        out["gmm_precision"] = gmm["samples"]["attr"]["precision"]
    return out


EVAL_COLUMNS = (("-ELBO", "neg_elbo", "{:.1f}"), ("IWAE", "iwae_nll", "{:.1f}"), ("PSNR", "psnr", "{:.2f}"),
                ("SSIM", "ssim", "{:.3f}"), ("FD-attr", "fd_attr", "{:.3f}"), ("prec", "precision", "{:.3f}"),
                ("recall", "recall", "{:.3f}"), ("MIG", "mig", "{:.3f}"), ("FD GMM", "gmm_fd_attr", "{:.3f}"),
                ("prec GMM", "gmm_precision", "{:.3f}"))


def format_evals(table: dict[str, Any]) -> list[str]:
    """The trials' evaluations as a table (a study made with --evaluate), one row a trial."""
    from vaetui.studies.spec import TRIAL_EVAL as P

    rows = [r for r in table["rows"] if r.get("eval")]
    if not rows:
        return []
    params = sorted({k for r in rows for k in r["params"]})
    head = ["trial", *params, *(c[0] for c in EVAL_COLUMNS)]
    lines = []
    for r in rows:
        e = r["eval"]
        cells = [str(r["number"]), *(str(r["params"].get(p, "-")) for p in params)]
        cells += [fmt.format(e[key]) if key in e and e[key] is not None else "-" for _, key, fmt in EVAL_COLUMNS]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(head)]
    out = [f"evaluation on {P['count']} {P['split']} images (IWAE k={P['k']}; {P['samples_n']} samples each; "
           f"MIG on {P['disentangle_n']} images; GMM: the ex-post mixture's samples)",
           "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
    return out


def importances(study, complete: int) -> dict[str, float]:
    """optuna.importance (fANOVA) of each parameter; empty until it can say anything."""
    if complete < 3 or len(study.best_trial.params) < 2:  # one parameter: its importance is 1, trivially
        return {}
    import optuna

    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}


def format_table(table: dict[str, Any]) -> str:
    params = sorted({k for r in table["rows"] for k in r["params"]})
    head = ["trial", "run", "state", *params, "epoch", table["metric"], "KL", "recon"]
    lines = []
    for r in table["rows"]:
        cells = [str(r["number"]), r["run"], r["state"]]
        cells += [f"{r['params'][p]:g}" if isinstance(r["params"].get(p), float) else str(r["params"].get(p, "-"))
                  for p in params]
        cells += [str(r["epoch"] or "-")] + [f"{v:.4g}" if v is not None else "-" for v in
                                              (r["value"], r["kl"], r["recon"])]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
    out = [f"study {table['study']}: {len(table['rows'])}/{table['trials']} trials, sampler {table['sampler']}, "
           f"pruner {table['pruner']}, {table['metric']} ({table['direction']})",
           "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
    for r in table["rows"]:
        if r["reason"] and r["state"] != "complete":
            out.append(f"  trial {r['number']}: {r['reason']}")
    best = table["best"]
    if best:
        params = "  ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
        out.append(f"best: trial {best['number']} ({best['run']}) {table['metric']} {best['value']:.4g}  {params}")
    else:
        out.append("best: no finished trial yet")
    if table["importances"]:
        out.append("importance: " + "  ".join(f"{k} {v:.2f}" for k, v in table["importances"].items()))
    return "\n".join(out + format_evals(table))


def rate_distortion_png(table: dict[str, Any], out: Path) -> Path:
    """KL (rate) against reconstruction (distortion) of every trial with an epoch, labelled by its parameters."""
    from vaetui.pictures.plots import RDPoint, rate_distortion

    points = [RDPoint(" ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items()),
                      r["kl"], r["recon"], group=r["state"])
              for r in table["rows"] if r["kl"] is not None and r["recon"] is not None]
    return rate_distortion(points, f"study {table['study']}: {len(points)} trials", out)


def show(root: Path, name: str, as_json: bool = False, out: str | None = None) -> int:
    table = study_table(root, name)
    if out:
        path = rate_distortion_png(table, Path(out))
        print(f"wrote {path}", file=sys.stderr if as_json else sys.stdout)
    print(json.dumps(table, indent=2) if as_json else format_table(table))
    return 0
