"""Every file the project writes goes through here: written to a temp file in the same folder, then renamed over
the target (``os.replace`` is atomic), so a run killed mid-write leaves the old file or none — never a truncated
one that looks complete.  Temp files are hidden (``.name.XXXX.tmp.ext``) and removed on any error."""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

TMP_GLOB = ".*.tmp*"          # what a killed writer can leave behind (see remove_stale_temps)


def _umask() -> int:
    mask = os.umask(0)       # the only way to read it is to set it; put back at once
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write (same folder, same extension, so writers that go by it still work); on success
    it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())     # mkstemp makes it 0600; the file gets what open() would have given it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_image(path: str | Path, image: np.ndarray, params=()) -> Path:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image, list(params)):
            raise OSError(f"could not write image {path}")
    return Path(path)


def write_table(path: str | Path, df, **kw) -> Path:
    """A DataFrame as parquet, or csv when the path ends in .csv."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kw) if Path(path).suffix == ".csv" else df.to_parquet(tmp, **kw)
    return Path(path)


def write_figure(path: str | Path, fig, **kw) -> Path:
    """Saves a matplotlib figure and closes it (figures left open pile up over a folder of images)."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or None, **kw)
    plt.close(fig)
    return Path(path)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temp files a killed writer left in ``folder``; returns them."""
    stale = [p for p in Path(folder).glob(TMP_GLOB) if p.is_file()]
    for p in stale:
        p.unlink()
    return stale
