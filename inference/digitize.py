"""Paper ECGs -> 12-lead CSVs (and pictures, and WFDB records): a file, a folder or a glob of scans or photos at once.

    python -m inference.digitize PATH... out=DIR [fs=500] [wfdb=true] [plot=true] [workers=1]
                                 [checkpoints=[...]] [method=pipeline|classical]

PATH: an image file, a folder (searched recursively for .png .jpg .jpeg .tif .tiff .bmp .webp) or a quoted glob.
Per image, named after its path below the folder given (``a/b.png`` -> ``a__b``) or after the file's stem:
- ``DIR/<name>.csv``: 12 leads in mV over 10 s at fs, the layout of the competition's train CSVs (each short lead
  only in its 2.5 s window, NaN elsewhere; lead II over the whole rhythm strip);
- ``DIR/<name>.png``: the leads over the rectified page they were read from (plot=false: none);
- with wfdb=true ``DIR/<name>.hea/.dat``: the same as a WFDB record (16 bit, 1 uV per unit, NaN where not printed).
``DIR/summary.csv``: per image and lead the confidence (``trace_prob``: mean trace probability at the traced pixel;
``gap_share``: share of columns filled across a gap), the flags ``no_page`` (stage 0 found no page: the whole image
was read) and ``lattice_fallback`` (stage 1's grid was unusable), and the reason of any failure.

Checkpoints default to the shipped ``weights/`` (files, folders and ``hf://owner/repo`` ids also work, see
pagekit/weights.py); method=classical needs none (upright clean pages only).  Images whose CSV exists are skipped,
so an interrupted run resumes; workers=N digitizes N images at once in separate processes.  Other options as
``python -m inference`` (tta_flip=true, stage0_tta=false, extract.<field>=..., stageN.model.<key>=..., device=cpu,
precision=fp32).
The exit status is 1 only when no image could be digitized.
"""
from __future__ import annotations

import glob
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data import cli
from data import geometry as G
from data.files import atomic_path, write_figure, write_table
from inference.pipeline import BaseDigitizer, DigitizerOptions, leads_frame
from pagekit.weights import resolve_checkpoints

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
SUMMARY_COLUMNS = ["name", "image", "status", "reason", "lead", "trace_prob", "gap_share", "no_page",
                   "lattice_fallback", "seconds"]


@dataclass(kw_only=True)
class Options(DigitizerOptions):
    paths: list[str] = field(default_factory=list)
    out: str = "digitized"
    fs: int = 500
    wfdb: bool = False
    plot: bool = True
    workers: int = 1
    method: str = "pipeline"          # pipeline | classical

    def make(self) -> BaseDigitizer:
        if self.method == "classical":
            from inference.classical import ClassicalDigitizer
            return ClassicalDigitizer(extract=self.extract)
        if self.method != "pipeline":
            raise ValueError(f"method must be pipeline or classical, got {self.method!r}")
        return self.digitizer()


def find_images(specs: list[str]) -> tuple[dict[str, Path], list[str]]:
    """PATH arguments -> ({output name: image}, notes on what was skipped).  Names are unique and depend only on
    the arguments, so a second run maps each image to the same files (resume)."""
    found: list[tuple[str, Path]] = []
    notes = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
            if len(files) > len(images):
                notes.append(f"{p}: {len(files) - len(images)} files that are not images by their suffix skipped")
            found += [("__".join(f.relative_to(p).with_suffix("").parts), f) for f in images]
        elif p.is_file():                                   # given by name: tried whatever its suffix
            found.append((p.stem, p))
        else:
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
            if not matches:
                notes.append(f"{spec}: no such file or folder, and no file matches it as a glob")
            found += [(m.stem, m) for m in matches]
    out: dict[str, Path] = {}
    seen: set[Path] = set()
    for name, path in found:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        unique, n = name, 2
        while unique in out:
            unique, n = f"{name}-{n}", n + 1
        out[unique] = path
    return out, notes


def write_wfdb(path: Path, df: pd.DataFrame, fs: int) -> None:
    """The 12 leads as a WFDB record (``path``.hea/.dat), both files written to a temp folder and renamed."""
    import wfdb

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".wfdb-") as tmp:
        wfdb.wrsamp(path.name, fs=fs, units=["mV"] * len(df.columns), sig_name=list(df.columns),
                    p_signal=df.to_numpy(np.float64), fmt=["16"] * len(df.columns),
                    adc_gain=[1000.0] * len(df.columns), baseline=[0] * len(df.columns), write_dir=tmp)
        for suffix in (".dat", ".hea"):                     # the header last: a record is complete once it exists
            os.replace(Path(tmp) / f"{path.name}{suffix}", path.with_suffix(suffix))


def failure_kind(e: BaseException) -> str:
    return getattr(e, "kind", None) or type(e).__name__


def digitize_one(dig: BaseDigitizer, name: str, image: Path, out: Path, opts: Options) -> list[dict]:
    """One image -> its files in ``out``; returns its summary rows (one per lead, or one failure row)."""
    t0 = time.perf_counter()
    base = {"name": name, "image": str(image)}
    try:
        reading = dig.read(image, opts.fs)
        df = leads_frame(reading.leads, opts.fs)
        if opts.plot and reading.page is not None:
            from inference.plot import plot_leads
            write_figure(out / f"{name}.png", plot_leads(reading.page, reading.leads, opts.fs, dig.k, title=name),
                         dpi=100)
        if opts.wfdb:
            write_wfdb(out / name, df, opts.fs)
        write_table(out / f"{name}.csv", df, index=False, float_format="%.4f")   # last: it marks the image done
    except Exception as e:                                   # noqa: BLE001 - one bad image must not stop the rest
        return [{**base, "status": "failed", "reason": f"{failure_kind(e)}: {e}",
                 "seconds": time.perf_counter() - t0}]
    seconds = time.perf_counter() - t0
    return [{**base, "status": "ok", "reason": "", "lead": lead, **reading.confidence.get(lead, {}),
             **reading.flags, "seconds": seconds} for lead in G.LEADS]


_WORKER: dict = {}


def _init_worker(opts: Options, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    _WORKER["dig"], _WORKER["opts"] = opts.make(), opts


def _work(name: str, image: str, out: str) -> list[dict]:
    return digitize_one(_WORKER["dig"], name, Path(image), Path(out), _WORKER["opts"])


def run_all(todo: dict[str, Path], out: Path, opts: Options) -> list[dict]:
    rows: list[dict] = []
    bar = tqdm(total=len(todo), desc="digitize", unit="img")
    if opts.workers <= 1 or len(todo) <= 1:
        dig = opts.make()
        for name, image in todo.items():
            rows += digitize_one(dig, name, image, out, opts)
            bar.update()
    else:
        import multiprocessing as mp
        threads = max(1, (os.cpu_count() or 1) // opts.workers)
        with ProcessPoolExecutor(opts.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(opts, threads)) as pool:
            futures = [pool.submit(_work, name, str(image), str(out)) for name, image in todo.items()]
            for f in as_completed(futures):
                rows += f.result()
                bar.update()
    bar.close()
    return rows


def merge_summary(path: Path, rows: list[dict], names: dict[str, Path]) -> pd.DataFrame:
    """This run's rows over the rows of earlier runs (an image digitized again replaces its old rows)."""
    new = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if path.is_file():
        old = pd.read_csv(path, dtype={"name": str, "lead": str})
        old = old[~old["name"].isin(set(new["name"]))]
        new = pd.concat([old, new], ignore_index=True) if len(old) else new
    order = {n: i for i, n in enumerate(names)}
    return new.sort_values("name", key=lambda s: s.map(order).fillna(len(order)), kind="stable")


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__, positional=("paths",), open_keys=Options.OPEN_KEYS)
    out = Path(opts.out)
    with cli.reported():
        if not opts.paths:
            raise ValueError("no PATH given: python -m inference.digitize PATH... out=DIR")
        images, notes = find_images(opts.paths)
        for note in notes:
            print(f"note: {note}")
        if not images:
            raise FileNotFoundError(f"no image found in {' '.join(opts.paths)}")
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".write-test") as probe:      # an output folder that cannot be written ends here
            probe.write_text("")
        (out / ".write-test").unlink()
        if opts.method == "pipeline":
            opts.checkpoints = resolve_checkpoints(opts.checkpoints)  # once (weights/, Hub ids) for every worker
    todo = {n: p for n, p in images.items() if not (out / f"{n}.csv").is_file()}
    if len(todo) < len(images):
        print(f"{len(images) - len(todo)} of {len(images)} images already digitized in {out}: skipped")
    rows = run_all(todo, out, opts) if todo else []
    summary = merge_summary(out / "summary.csv", rows, images)
    write_table(out / "summary.csv", summary, index=False, float_format="%.4f")
    per_image = summary.drop_duplicates("name")
    failed = per_image[per_image["status"] == "failed"]
    print(f"{len(per_image) - len(failed)} of {len(images)} images digitized into {out} (summary.csv)")
    if len(failed):
        kinds = Counter(r.split(":")[0] for r in failed["reason"])
        print("failed: " + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
        for r in failed.itertuples():
            print(f"  {r.image}: {r.reason}")
    if len(failed) == len(per_image):
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main()
