"""Decode once: every image of a split decoded into one uint8 array on disk, then memory-mapped.

Later epochs and later runs take batches as array slices: no PIL, no per-image Python in
the training loop. The cache is keyed by the files (paths, sizes, mtimes) and the
geometry, so a changed dataset rebuilds it. It is written under a temporary name and
renamed when complete, so an interrupted build is never used.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vaetui.data.decode import UnreadableImage, load_rgb
from vaetui.errors import DataError

Progress = Callable[[int, int, str], None]
CHUNK = 64


def cache_dir() -> Path:
    """$VAETUI_CACHE_DIR, else $XDG_CACHE_HOME/vaetui, else ~/.cache/vaetui."""
    if os.environ.get("VAETUI_CACHE_DIR"):
        return Path(os.environ["VAETUI_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vaetui"


def cache_key(folder: Path, files: Sequence[str], size: tuple[int, int], geometry: str) -> str:
    """A digest of the source files' paths, sizes and mtimes, and the geometry."""
    h = hashlib.sha256()
    h.update(f"v1|{folder.resolve()}|{size[0]}x{size[1]}|{geometry}|{len(files)}\n".encode())
    for f in files:
        try:
            st = (folder / f).stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}|missing\n".encode())
    return h.hexdigest()[:20]


@dataclass
class Cache:
    """A finished cache: the memory-mapped array, which rows hold good images, and what was skipped."""

    array: np.ndarray  # (N, 3, H, W) uint8, memory-mapped
    good: np.ndarray  # indices of rows that decoded
    skipped: list[tuple[str, str]]  # (file, reason)
    path: Path
    log: Path | None


def _decode_chunk(args) -> list[tuple[int, str | None]]:
    folder, files, start, out_path, shape, size, geometry = args
    arr = np.memmap(out_path, dtype=np.uint8, mode="r+", shape=shape)
    results = []
    for k, f in enumerate(files):
        try:
            arr[start + k] = load_rgb(str(folder / f), size, geometry)
            results.append((start + k, None))
        except UnreadableImage as exc:
            results.append((start + k, str(exc)))
    arr.flush()
    del arr
    return results


def _workers() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:
        return max(1, min(os.cpu_count() or 1, 8))


def build_or_open(folder: Path, files: Sequence[str], size: tuple[int, int], geometry: str, name: str,
                  progress: Progress | None = None, workers: int | None = None) -> Cache:
    """Open the cache for these files, building it first (in parallel, with progress) when needed."""
    if not files:
        raise DataError(f"no images for the {name} split in {folder}")
    h, w = size
    shape = (len(files), 3, h, w)
    key = cache_key(folder, files, size, geometry)
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {root} ({exc.strerror}): set VAETUI_CACHE_DIR "
                        f"to a writable folder") from None
    base = root / f"{name}-{h}x{w}-{geometry}-{key}"
    data_path, meta_path = base.with_suffix(".u8"), base.with_suffix(".json")
    if meta_path.exists() and data_path.exists():
        meta = json.loads(meta_path.read_text())
        if data_path.stat().st_size == int(np.prod(shape)):
            return _open(data_path, shape, meta, base)
    # Build under a temporary name; rename when complete.
    fd, tmp = tempfile.mkstemp(prefix=f".{base.name}.", suffix=".tmp", dir=root)
    os.close(fd)
    try:
        with open(tmp, "r+b") as fh:
            fh.truncate(int(np.prod(shape)))
        jobs = [(folder, list(files[i : i + CHUNK]), i, tmp, shape, size, geometry)
                for i in range(0, len(files), CHUNK)]
        errors: dict[int, str] = {}
        done = 0
        n_workers = workers or _workers()
        if progress:
            progress(0, len(files), f"decoding {name} images once")
        if n_workers == 1 or len(jobs) == 1:
            results = map(_decode_chunk, jobs)
            for res in results:
                done = _collect(res, errors, done, len(files), name, progress)
        else:
            # spawn, not fork: the caller may be a thread of a process that runs torch and a UI
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for res in pool.map(_decode_chunk, jobs):
                    done = _collect(res, errors, done, len(files), name, progress)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, data_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    skipped = [(files[i], reason) for i, reason in sorted(errors.items())]
    log = None
    if skipped:
        log = base.with_suffix(".skipped.txt")
        log.write_text("".join(f"{folder / f}\t{reason}\n" for f, reason in skipped))
    meta = {"files": len(files), "good": [i for i in range(len(files)) if i not in errors],
            "skipped": skipped, "log": str(log) if log else None, "source": str(folder)}
    tmp_meta = meta_path.with_suffix(".json.tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)
    return _open(data_path, shape, meta, base)


def _collect(res, errors, done, total, name, progress) -> int:
    for idx, err in res:
        if err is not None:
            errors[idx] = err
    done += len(res)
    if progress:
        progress(done, total, f"decoding {name} images once")
    return done


def _open(data_path: Path, shape, meta, base: Path) -> Cache:
    array = np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)
    good = np.asarray(meta["good"], dtype=np.int64)
    skipped = [tuple(s) for s in meta.get("skipped", [])]
    log = Path(meta["log"]) if meta.get("log") else None
    return Cache(array, good, skipped, data_path, log)


def status(folder: Path, files: Sequence[str], size: tuple[int, int], geometry: str, name: str) -> str:
    """'ready (N images, X MB)' or 'not built yet' for `vaetui data info`."""
    h, w = size
    key = cache_key(folder, files, size, geometry)
    base = cache_dir() / f"{name}-{h}x{w}-{geometry}-{key}"
    if base.with_suffix(".json").exists() and base.with_suffix(".u8").exists():
        mb = base.with_suffix(".u8").stat().st_size / 1e6
        return f"ready ({len(files)} images, {mb:.0f} MB, {base.with_suffix('.u8')})"
    return f"not built yet (first use decodes {len(files)} images, {len(files) * 3 * h * w / 1e6:.0f} MB)"
