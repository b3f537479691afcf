"""Throughput and peak memory of the folder CLI (``python -m inference.digitize``) with 1..N workers.

    python scripts/bench_digitize.py FOLDER [workers=1,2] [extra=plot=false]

Runs the folder CLI on FOLDER once per worker count, each into a fresh temp folder (nothing skipped), and prints
images per minute (wall clock of the whole command, model loading included) and the peak resident memory of the
whole process tree (the command and its workers, summed, sampled every 0.1 s).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data import cli  # noqa: E402


@dataclass
class Options:
    folder: str
    workers: list[int] = field(default_factory=lambda: [1, 2])
    extra: list[str] = field(default_factory=lambda: ["plot=false"])


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(folder: str, workers: int, extra: list[str]) -> tuple[int, float, float]:
    """(images digitized, seconds, peak GiB of the process tree)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "inference.digitize", folder, f"out={out}", f"workers={workers}", *extra]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(ps))
                time.sleep(0.1)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        stdout, _ = proc.communicate()
        seconds = time.perf_counter() - t0
        done.set()
        t.join()
        if proc.returncode:
            raise SystemExit(f"the folder CLI failed ({proc.returncode}):\n{stdout[-2000:]}")
        n = sum(1 for p in Path(out).glob("*.csv") if p.name != "summary.csv")
    return n, seconds, peak[0] / 2 ** 30


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("folder",))
    print(f"{'workers':>7} {'images':>6} {'seconds':>8} {'images/min':>10} {'peak GiB':>8}")
    for w in opts.workers:
        n, s, gib = run(opts.folder, w, opts.extra)
        print(f"{w:>7} {n:>6} {s:>8.1f} {60 * n / s:>10.2f} {gib:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
