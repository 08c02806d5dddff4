"""Decode once: every image of a split decoded into one uint8 array on disk, then memory-mapped.

Later epochs and later runs take batches as array slices: no PIL, no per-image Python in
the training loop. The cache is keyed by the files (paths, sizes, mtimes, inodes and
change times) and the geometry, so a changed dataset rebuilds it, and the cache it
replaces is removed. It is written under a temporary name and
renamed when complete, so an interrupted build is never used (and its temp file is
removed by the next build). One process builds at a time, under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vaetui.data.decode import UnreadableImage, load_rgb
from vaetui.errors import DataError
from vaetui.disk.files import atomic_write_bytes, cache_dir, fsync_dir, fsync_file, remove_abandoned_temps
from vaetui.disk.locks import file_lock, try_lock

Progress = Callable[[int, int, str], None]
CHUNK = 64
BUILDING = ".u8.building"  # the temp file of a build in progress: .<base>.u8.building


def cache_key(folder: Path, files: Sequence[str], size: tuple[int, int], geometry: str) -> str:
    """A digest of the source files' identities and the geometry: path, size, mtime, and the inode and its change
    time (ctime).

    mtime alone can be carried over with the file (`cp -p`, `rsync -t`, `tar x`, `touch -r`): a same-size image
    copied that way kept its old decode. ctime cannot be set from user space: the kernel sets it to "now" on
    every write, every new file and every utime() call, so a file that was replaced in any way changes the key.
    It costs nothing beyond the stat() already made (a content hash of each file's head and tail would cost two
    reads per file: ~400,000 for CelebA at every start).
    """
    h = hashlib.sha256()
    h.update(f"v2|{folder.resolve()}|{size[0]}x{size[1]}|{geometry}|{len(files)}\n".encode())
    for f in files:
        try:
            st = (folder / f).stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}\n".encode())
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


def _paths(root: Path, name: str, files: Sequence[str], folder: Path, size: tuple[int, int], geometry: str):
    h, w = size
    base = root / f"{name}-{h}x{w}-{geometry}-{cache_key(folder, files, size, geometry)}"
    return base, base.with_suffix(".u8"), base.with_suffix(".json")


def _try_open(data_path: Path, meta_path: Path, shape, base: Path) -> Cache | None:
    """The finished cache, or None when it is missing, incomplete or its metadata is damaged (rebuild)."""
    try:
        meta = json.loads(meta_path.read_text())
        if data_path.stat().st_size != int(np.prod(shape)) or int(meta["files"]) != shape[0]:
            return None
        return _open(data_path, shape, meta, base)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sweep(root: Path) -> None:
    """Remove what interrupted builds left (a full-size temp file each), unless their builder still runs."""
    for tmp in root.glob(".*" + BUILDING):
        base = tmp.name[1 : -len(BUILDING)]
        fd = try_lock(root / f"{base}.lock")
        if fd is None and (root / f"{base}.lock").exists():
            continue  # being built right now
        try:
            tmp.unlink(missing_ok=True)
        finally:
            if fd is not None:
                os.close(fd)
    remove_abandoned_temps(root)


def build_or_open(folder: Path, files: Sequence[str], size: tuple[int, int], geometry: str, name: str,
                  progress: Progress | None = None, workers: int | None = None) -> Cache:
    """Open the cache for these files, building it first (in parallel, with progress) when needed.

    One process builds, under a file lock; others (two ranks, the TUI and the CLI) wait for
    it and then open what it built.
    """
    if not files:
        raise DataError(f"no images for the {name} split in {folder}")
    h, w = size
    shape = (len(files), 3, h, w)
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {root} ({exc.strerror}): set VAETUI_CACHE_DIR "
                        f"to a writable folder") from None
    base, data_path, meta_path = _paths(root, name, files, folder, size, geometry)
    cache = _try_open(data_path, meta_path, shape, base)
    if cache is not None:
        return cache
    lock = base.with_suffix(".lock")
    lock.touch(mode=0o666, exist_ok=True)
    fd = try_lock(lock)
    if fd is None:
        if progress:
            progress(0, len(files), f"waiting for another process to decode the {name} images")
    else:
        os.close(fd)
    with file_lock(lock):
        cache = _try_open(data_path, meta_path, shape, base)  # built by the process we waited for
        if cache is not None:
            return cache
        _sweep(root)
        errors = _build(folder, files, size, geometry, name, shape, root / f".{base.name}{BUILDING}", data_path,
                        progress, workers)
        skipped = [(files[i], reason) for i, reason in sorted(errors.items())]
        log = None
        if skipped:
            log = base.with_suffix(".skipped.txt")
            atomic_write_bytes(log, "".join(f"{folder / f}\t{reason}\n" for f, reason in skipped).encode())
        meta = {"files": len(files), "good": [i for i in range(len(files)) if i not in errors],
                "skipped": skipped, "log": str(log) if log else None, "source": str(folder)}
        atomic_write_bytes(meta_path, json.dumps(meta).encode())
        _remove_superseded(root, base, str(folder))
    return _open(data_path, shape, meta, base)


def _remove_superseded(root: Path, base: Path, source: str) -> None:
    """Remove the caches this build replaces: the same split, size and geometry of the same folder, whose files
    have changed since (nothing will ask for them again). A process still reading one keeps its mapping."""
    prefix = base.name[: base.name.rfind("-") + 1]
    for meta_path in root.glob(f"{prefix}*.json"):
        old = meta_path.with_suffix("")
        if old.name == base.name or old.name.rfind("-") + 1 != len(prefix):
            continue
        try:
            if json.loads(meta_path.read_text()).get("source") != source:
                continue  # another copy of the dataset: still in use
        except (OSError, ValueError, AttributeError):
            continue
        for suffix in (".u8", ".skipped.txt", ".json", ".lock"):
            old.with_suffix(suffix).unlink(missing_ok=True)


def _build(folder, files, size, geometry, name, shape, tmp: Path, data_path: Path, progress, workers) -> dict[int, str]:
    """Decode every file into tmp (a fixed name: the caller holds the lock), then rename it into place."""
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.ftruncate(fd, int(np.prod(shape)))
        finally:
            os.close(fd)
        jobs = [(folder, list(files[i : i + CHUNK]), i, str(tmp), shape, size, geometry)
                for i in range(0, len(files), CHUNK)]
        errors: dict[int, str] = {}
        done = 0
        n_workers = workers or _workers()
        if progress:
            progress(0, len(files), f"decoding {name} images once")
        if n_workers == 1 or len(jobs) == 1:
            for res in map(_decode_chunk, jobs):
                done = _collect(res, errors, done, len(files), name, progress)
        else:
            # spawn, not fork: the caller may be a thread of a process that runs torch and a UI
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for res in pool.map(_decode_chunk, jobs):
                    done = _collect(res, errors, done, len(files), name, progress)
        fsync_file(tmp)
        os.replace(tmp, data_path)
        fsync_dir(data_path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return errors


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
    base, data_path, meta_path = _paths(cache_dir(), name, files, folder, size, geometry)
    cache = _try_open(data_path, meta_path, (len(files), 3, h, w), base)
    if cache is None:
        return f"not built yet (first use decodes {len(files)} images, {len(files) * 3 * h * w / 1e6:.0f} MB)"
    mb = data_path.stat().st_size / 1e6
    skipped = f", {len(cache.skipped)} unreadable skipped (see {cache.log})" if cache.skipped else ""
    return f"ready ({len(cache.good)} images, {mb:.0f} MB, {data_path}){skipped}"
