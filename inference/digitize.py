"""Paper ECGs -> 12-lead CSVs (and pictures, and WFDB records): a file, a folder or a glob of scans or photos at once.

    python -m inference.digitize PATH... out=DIR [fs=500] [wfdb=true] [plot=true] [workers=1] [layout=auto]
                                 [checkpoints=[...]] [method=pipeline|classical]

PATH: an image file, a folder (searched recursively for .png .jpg .jpeg .tif .tiff .bmp .webp) or a quoted glob.
Per image, named after its path below the folder given (``a/b.png`` -> ``a__b``) or after the file's stem:
- ``DIR/<name>.csv``: 12 leads in mV over 10 s at fs, each lead over the seconds its page prints it and NaN
  elsewhere (the competition's 3x4+II page: each short lead in its 2.5 s window, lead II over the whole strip);
- ``DIR/<name>.png``: the leads over the rectified page they were read from (plot=false: none);
- with wfdb=true ``DIR/<name>.hea/.dat``: the same as a WFDB record (16 bit, 1 uV per unit, NaN where not printed).
``layout=auto`` finds each page's layout (``3x4+II``, ``3x4``, ``3x4+<strip leads>``, ``6x2``, ``6x2+II``,
``12x1``: data/layouts/) from its rows of trace and names each rhythm strip by the lead it repeats; a page whose
rows fit none is ``failed`` (not read), never read as another layout; ``layout=NAME`` forces one.
``DIR/summary.csv``: per image the ``layout`` read, per lead the confidence (``trace_prob``: mean trace probability
at the traced pixel; ``gap_share``: share of columns filled across a gap), the flags ``no_page`` (stage 0 found no
page: the whole image was read), ``lattice_fallback`` (stage 1's grid was unusable) and ``whole_image`` (the rows
fit a layout only with the whole image as the page), and a verdict: ``status`` ``ok``, ``check`` (read, with the
doubts in ``reason``: no page outline, no usable grid, a lead mostly filled across gaps, a strip left unnamed) or
``failed`` (no reading written, ``reason`` says why).

Checkpoints default to the shipped ``weights/`` (files, folders and ``hf://owner/repo`` ids also work, see
pagekit/weights.py); method=classical needs none (upright clean pages only).  fs is the output rate in Hz (50 to
10000).  Other options as ``python -m inference`` (tta_flip=true, stage0_tta=false, extract.<field>=...,
stageN.model.<key>=..., device=cpu, precision=fp32).

Resuming: each image's summary rows and the options that shaped its files (fs, wfdb, plot, method, the checkpoints'
contents, extraction and TTA settings, layout) are kept in ``DIR/.digitize/<name>.json``.  A rerun skips an image
whose CSV was made with the same options, redoes one made with others (and says which), and retries failed ones;
summary.csv always covers every image of the PATHs, however many runs it took.
workers=N digitizes N images at once in separate processes; shard=i/n (0 <= i < n) takes the i-th of n disjoint
parts of the images (by a hash of each name, so the parts do not depend on what else is in the folder): n jobs of
a cluster array, each with its own i, cover the folder once (see scripts/digitize_array.py).
The exit status is 1 only when no image of the PATHs has a reading.
"""
from __future__ import annotations

import glob
import json
import os
import tempfile
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data import cli
from data import geometry as G
from data.files import atomic_path, sha256, write_figure, write_table, write_text
from data.layout import get_layout
from inference.pipeline import BaseDigitizer, DigitizerOptions, full_lengths, leads_frame
from pagekit.weights import resolve_checkpoints

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
SUMMARY_COLUMNS = ["name", "image", "status", "reason", "layout", "lead", "expected_snr_db", "trace_prob", "gap_share",
                   "near_share", "fit_db", "no_page", "lattice_fallback", "grid_page", "whole_image", "seconds"]


@dataclass(kw_only=True)
class Options(DigitizerOptions):
    paths: list[str] = field(default_factory=list)
    out: str = "digitized"
    fs: int = 500
    wfdb: bool = False
    plot: bool = True
    workers: int = 1
    method: str = "pipeline"          # pipeline | classical
    shard: str = ""                   # i/n: the i-th of n disjoint parts of the images
    batch_size: int = 1               # a batch costs memory and gains nothing on a CPU; on a GPU take 8 or more
    layout: str = "auto"              # auto: read from each page; a name (data/layouts/, 3x4+<leads>) forces one

    FS_RANGE = (50, 10000)
    # what a rerun must match to skip an image
    SHAPES_OUTPUT = ("fs", "wfdb", "plot", "method", "weights", "rectify", "tta_flip", "stage0_tta", "extract",
                     "stage0", "stage1", "stage2", "precision", "layout", "register")

    def check(self) -> None:
        lo, hi = self.FS_RANGE
        if not lo <= self.fs <= hi:
            raise ValueError(f"fs={self.fs}: the output sampling rate in Hz must be from {lo} to {hi} "
                             f"(the competition's are 250 to 1025)")
        for key in ("workers", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}: must be 1 or more")
        shard_of(self.shard)
        if self.method == "classical" and self.layout not in ("auto", G.DEFAULT_LAYOUT):
            raise ValueError(f"method=classical reads only the competition's page ({G.DEFAULT_LAYOUT}), not "
                             f"layout={self.layout}: use method=pipeline")
        if self.layout != "auto":
            get_layout(self.layout)                   # an unknown name ends here, before anything is read

    def record(self) -> dict:
        """The options that shaped an image's files, checkpoints by content (a file replaced in place counts).
        Made once per run (hashing the models costs 0.1 s) and written with every image: call it after the
        checkpoints are resolved."""
        return self._record

    @cached_property
    def _record(self) -> dict:
        rec = {k: getattr(self, k) for k in self.SHAPES_OUTPUT}
        if self.method == "pipeline":
            rec["checkpoints"] = [file_digest(p) for p in self.checkpoints]
        return json.loads(json.dumps(rec, default=str))

    def make(self) -> BaseDigitizer:
        if self.method == "classical":
            from inference.classical import ClassicalDigitizer
            return ClassicalDigitizer(extract=self.extract)
        if self.method != "pipeline":
            raise ValueError(f"method must be pipeline or classical, got {self.method!r}")
        return self.digitizer()


def shard_of(spec: str) -> tuple[int, int] | None:
    """'i/n' -> (i, n); '' -> None."""
    if not spec:
        return None
    i, slash, n = spec.partition("/")
    try:
        i, n = int(i), int(n)
    except ValueError:
        i = n = -1
    if not slash or not 0 <= i < n:
        raise ValueError(f"shard={spec!r}: expected i/n with 0 <= i < n, e.g. shard=0/4 ... shard=3/4")
    return i, n


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    # a hash of the name, not its rank in the listing: the parts stay disjoint and covering when files come and go
    return shard is None or zlib.crc32(name.encode()) % shard[1] == shard[0]


def file_digest(path: str | Path) -> str:
    return f"{Path(path).name}:{sha256(path)[:16]}"


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


class NotRead(ValueError):
    """A page looked at and not read: its rows fit no layout we read (the message says what was found)."""
    kind = "not read"


def failure_kind(e: BaseException) -> str:
    return getattr(e, "kind", None) or type(e).__name__


def record_path(out: Path, name: str) -> Path:
    return out / ".digitize" / f"{name}.json"


def read_record(out: Path, name: str) -> dict | None:
    try:
        return json.loads(record_path(out, name).read_text())
    except (OSError, ValueError):
        return None


def read_batch(dig: BaseDigitizer, images: list[Path], fs: int) -> list:
    """A Reading per image, or the exception that image raised: one batch through every stage (a GPU reads
    batch_size pages at once), and image by image when the batch fails, so a bad file costs only itself."""
    try:
        return dig.run(list(images), [fs] * len(images), [None] * len(images))
    except Exception as e:                                   # noqa: BLE001 - find the bad image, keep the rest
        if len(images) == 1:
            return [e]
        return [r for image in images for r in read_batch(dig, [image], fs)]


def write_outputs(dig: BaseDigitizer, name: str, image: Path, reading, seconds: float, out: Path,
                  opts: Options) -> list[dict]:
    """One image's files in ``out`` and its record (summary rows + options), written before the CSV that marks it
    done; returns its summary rows (one per lead, or one failure row)."""
    t0 = time.perf_counter()
    for old in (f"{name}.csv", f".{name}.done.csv", f"{name}.png", f"{name}.hea", f"{name}.dat"):
        (out / old).unlink(missing_ok=True)                   # redone: nothing of another run may survive a failure
    base = {"name": name, "image": str(image)}
    try:
        if isinstance(reading, BaseException):
            raise reading
        if reading.failure:
            raise NotRead(reading.failure)
        df = leads_frame(reading.leads, opts.fs, reading.layout)
        doubts = reading.doubts()
        if opts.plot and reading.page is not None:
            from inference.plot import plot_leads
            title = f"{name} ({reading.layout.name})" + (f"  CHECK: {'; '.join(doubts)}" if doubts else "")
            expected = {lead: c["expected_snr_db"] for lead, c in reading.confidence.items() if "expected_snr_db" in c}
            write_figure(out / f"{name}.png", plot_leads(reading.page, reading.leads, opts.fs, dig.k, title=title,
                                                         layout=reading.layout, expected=expected), dpi=100)
        if opts.wfdb:
            write_wfdb(out / name, df, opts.fs)
        write_table(out / f".{name}.done.csv", df, index=False, float_format="%.4f")  # renamed once recorded
        seconds += time.perf_counter() - t0
        rows = [{**base, "status": reading.status, "reason": "; ".join(doubts), "layout": reading.layout.name,
                 "lead": lead,
                 **reading.confidence.get(lead, {}), **reading.flags, "seconds": seconds} for lead in G.LEADS]
    except Exception as e:                                   # noqa: BLE001 - one bad image must not stop the rest
        rows = [{**base, "status": "failed", "reason": f"{failure_kind(e)}: {e}",
                 "seconds": seconds + time.perf_counter() - t0}]
    write_text(record_path(out, name), json.dumps({"options": opts.record(), "rows": rows}, default=str))
    if rows[0]["status"] != "failed":
        os.replace(out / f".{name}.done.csv", out / f"{name}.csv")
    return rows


def digitize_batch(dig: BaseDigitizer, batch: dict[str, Path], out: Path, opts: Options) -> list[dict]:
    t0 = time.perf_counter()
    readings = read_batch(dig, list(batch.values()), opts.fs)
    each = (time.perf_counter() - t0) / max(1, len(batch))
    return [row for (name, image), reading in zip(batch.items(), readings)
            for row in write_outputs(dig, name, image, reading, each, out, opts)]


_WORKER: dict = {}


def _init_worker(opts: Options, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    _WORKER["dig"], _WORKER["opts"] = opts.make(), opts


def _work(name: str, image: str, out: str) -> list[dict]:
    return digitize_batch(_WORKER["dig"], {name: Path(image)}, Path(out), _WORKER["opts"])


def run_all(todo: dict[str, Path], out: Path, opts: Options, dig: BaseDigitizer | None = None) -> list[dict]:
    """Every image of ``todo``: batch_size at a time in this process (with ``dig`` when made already), or one at a
    time in each of ``workers``."""
    rows: list[dict] = []
    bar = tqdm(total=len(todo), desc="digitize", unit="img")
    if opts.workers <= 1 or len(todo) <= 1:
        dig = dig or opts.make()
        names = list(todo)
        for a in range(0, len(names), opts.batch_size):
            batch = {n: todo[n] for n in names[a:a + opts.batch_size]}
            rows += digitize_batch(dig, batch, out, opts)
            bar.update(len(batch))
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


def merge_summary(out: Path, names: dict[str, Path]) -> pd.DataFrame:
    """One record per image of ``names``, from its record file; rows of images that have none (digitized by a
    version that kept no records) come from the summary.csv already there, as do rows of images not among
    ``names`` (another PATH's run into the same folder)."""
    path = out / "summary.csv"
    old = pd.read_csv(path, dtype={"name": str, "lead": str}) if path.is_file() else pd.DataFrame(
        columns=SUMMARY_COLUMNS)
    parts, recorded = [], set()
    for name in names:
        rec = read_record(out, name)
        if rec is not None:
            parts.append(pd.DataFrame(rec["rows"], columns=SUMMARY_COLUMNS))
            recorded.add(name)
    kept = old[~old["name"].isin(recorded)]
    frames = [f for f in (kept, *parts) if len(f)]
    summary = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SUMMARY_COLUMNS)
    order = {n: i for i, n in enumerate(names)}
    return summary.sort_values("name", key=lambda s: s.map(order).fillna(len(order)), kind="stable")


def plan(images: dict[str, Path], out: Path, opts: Options) -> tuple[dict[str, Path], list[str]]:
    """(images to digitize now, what to tell the user): an image whose CSV was made with these options is
    skipped; one made with other options is redone; one without a record (an older version's) is kept."""
    now = opts.record()
    todo, same, redone, unrecorded = {}, 0, 0, 0
    changes: set[str] = set()
    for name, path in images.items():
        if not (out / f"{name}.csv").is_file():
            todo[name] = path
            continue
        rec = read_record(out, name)
        if rec is None:
            unrecorded += 1
        elif rec.get("options") == now:
            same += 1
        else:
            todo[name] = path
            redone += 1
            then = rec.get("options", {})
            changes |= {f"{k}: {then.get(k)} -> {now.get(k)}" for k in set(now) | set(then)
                        if then.get(k) != now.get(k)}
    notes = []
    if same:
        notes.append(f"{same} of {len(images)} images already digitized in {out} with these options: skipped")
    if redone:
        notes.append(f"{redone} images were digitized with other options ({'; '.join(sorted(changes))}): redone")
    if unrecorded:
        notes.append(f"{unrecorded} images have a CSV from a version that recorded no options: kept (delete a "
                     f"CSV to redo its image)")
    return todo, notes


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__, positional=("paths",), open_keys=Options.OPEN_KEYS)
    out = Path(opts.out)
    with cli.reported():
        opts.check()
        if not opts.paths:
            raise ValueError("no PATH given: python -m inference.digitize PATH... out=DIR")
        if out.exists() and not out.is_dir():
            raise ValueError(f"out={out} is a file: out names the folder the outputs go to")
        images, notes = find_images(opts.paths)
        for note in notes:
            print(f"note: {note}")
        if not images:
            raise FileNotFoundError(f"no image found in {' '.join(opts.paths)}")
        out_abs = out.resolve()
        inside = {n for n, p in images.items() if out_abs in p.resolve().parents}
        if inside:                                             # pictures of an earlier run, not scans
            print(f"note: {len(inside)} images inside out={out} skipped (outputs are not inputs)")
            images = {n: p for n, p in images.items() if n not in inside}
            if not images:
                raise FileNotFoundError(f"no image found in {' '.join(opts.paths)} outside out={out}")
        shard = shard_of(opts.shard)
        if shard is not None:
            images = {n: p for n, p in images.items() if in_shard(n, shard)}
            print(f"shard {opts.shard}: {len(images)} images")
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".write-test") as probe:      # an output folder that cannot be written ends here
            probe.write_text("")
        (out / ".write-test").unlink()
        if opts.method == "pipeline":
            opts.checkpoints = resolve_checkpoints(opts.checkpoints)  # once (weights/, Hub ids) for every worker
        todo, notes = plan(images, out, opts)
    for note in notes:
        print(note)
    if todo:
        with cli.reported():                  # models and options that do not go together end here, in one line
            dig = opts.make()
        if opts.workers > 1 and len(todo) > 1:
            dig = None                        # each worker makes its own: this one only checked, its memory freed
        run_all(todo, out, opts, dig)
    summary = merge_summary(out, images)
    write_table(out / "summary.csv", summary, index=False, float_format="%.4f")
    per_image = summary[summary["name"].isin(set(images))].drop_duplicates("name")
    failed = per_image[per_image["status"] == "failed"]
    check = per_image[per_image["status"] == "check"]
    doubt = f"; {len(check)} to check by eye (reason in summary.csv)" if len(check) else ""
    print(f"{len(per_image) - len(failed)} of {len(images)} images digitized into {out} (summary.csv){doubt}")
    if len(failed):
        kinds = Counter(r.split(":")[0] for r in failed["reason"])
        print("failed: " + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
        for r in failed.itertuples():
            print(f"  {r.image}: {r.reason}")
    if len(per_image) and len(failed) == len(per_image):
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    main()
