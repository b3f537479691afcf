"""The folder CLI for paper archives (python -m inference.digitize): per image a CSV in the train-CSV layout, a
picture and a WFDB record; a summary with per-lead confidence and named failures; resume; workers; exit status."""
import os
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from data import geometry as G
from inference.digitize import find_images
from inference.digitize import main as digitize


def _ckpts(runs):
    return "checkpoints=[" + ",".join(str(runs[s]) for s in (0, 1, 2)) + "]"


@pytest.fixture
def archive(smoke_data, tmp_path):
    """A researcher's folder: two scans (one in a subfolder, one rotated a quarter turn), a file that is not an
    image behind an image suffix, an image too small to hold a page, and a note."""
    src = sorted((smoke_data / "train").glob("*/*-0001.png"))
    root = tmp_path / "archive"
    (root / "ward2").mkdir(parents=True)
    shutil.copy(src[0], root / "a.png")
    cv2.imwrite(str(root / "ward2" / "b.jpg"), cv2.rotate(cv2.imread(str(src[1])), cv2.ROTATE_90_CLOCKWISE))
    (root / "broken.png").write_bytes(b"not an image")
    cv2.imwrite(str(root / "tiny.png"), np.full((40, 60, 3), 255, np.uint8))
    (root / "notes.txt").write_text("ward 2, 1998")
    return root


def test_a_folder_becomes_csvs_pictures_wfdb_and_a_summary_and_a_second_run_resumes(smoke_runs, archive, tmp_path,
                                                                                      capsys):
    import wfdb

    out = tmp_path / "out"
    summary = digitize([str(archive), f"out={out}", _ckpts(smoke_runs), "wfdb=true", "fs=250", "device=cpu"])
    text = capsys.readouterr().out
    assert "1 files that are not images" in text and "2 of 4 images digitized" in text
    assert "1 unreadable image" in text and "1 image too small" in text
    for name in ("a", "ward2__b"):
        df = pd.read_csv(out / f"{name}.csv")
        assert list(df.columns) == list(G.LEADS) and len(df) == G.sig_len(250) and df["II"].notna().all()
        a, b = G.lead_sample_window("V1", 250)
        assert df["V1"].iloc[a:b].notna().all() and df["V1"].drop(df.index[a:b]).isna().all()
        assert (out / f"{name}.png").stat().st_size > 10_000
        rec = wfdb.rdrecord(str(out / name))
        assert rec.fs == 250 and rec.sig_name == list(G.LEADS) and rec.units == ["mV"] * 12
        np.testing.assert_allclose(rec.p_signal, df.to_numpy(), atol=1e-3, equal_nan=True)
    ok = summary[summary["status"] == "ok"]
    assert len(ok) == 24 and set(ok["lead"]) == set(G.LEADS)
    assert ok["trace_prob"].between(0, 1).all() and ok["gap_share"].between(0, 1).all()
    failed = summary[summary["status"] == "failed"].set_index("name")["reason"]
    assert failed["broken"].startswith("unreadable image") and failed["tiny"].startswith("image too small")
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*"))

    done = {p: p.stat().st_mtime_ns for p in out.glob("*.csv") if p.name != "summary.csv"}
    os.remove(out / "a.csv")                                            # as if the first run had died on it
    again = digitize([str(archive), f"out={out}", _ckpts(smoke_runs), "fs=250", "device=cpu", "workers=2"])
    assert "1 of 4 images already digitized" in capsys.readouterr().out
    assert (out / "ward2__b.csv").stat().st_mtime_ns == done[out / "ward2__b.csv"]   # not redone
    assert (out / "a.csv").is_file() and len(again[again["status"] == "ok"]) == 24   # old rows kept, new added
    assert len(pd.read_csv(out / "summary.csv")) == len(again)


def test_nothing_to_do_or_nowhere_to_write_ends_with_a_message(archive, tmp_path, capsys):
    for bad in ("broken.png", "tiny.png"):
        shutil.copy(archive / bad, tmp_path / bad)
    with pytest.raises(SystemExit) as e:                                # every image failed: exit 1
        digitize([str(tmp_path / "broken.png"), str(tmp_path / "tiny.png"), f"out={tmp_path / 'o'}",
                  "method=classical"])
    assert e.value.code == 1 and "0 of 2 images digitized" in capsys.readouterr().out
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match="a_file"):                     # the output folder is a file
        digitize([str(archive / "a.png"), f"out={blocker}", "method=classical"])
    with pytest.raises(SystemExit, match="no image found"):
        digitize([str(tmp_path / "nothing_*.png"), f"out={tmp_path / 'o'}", "method=classical"])


def test_without_weights_the_classical_method_digitizes_and_the_pipeline_says_where_weights_go(
        archive, tmp_path, monkeypatch):
    import pagekit.weights as W

    summary = digitize([str(archive / "a.png"), f"out={tmp_path / 'c'}", "method=classical", "plot=false"])
    assert (summary["status"] == "ok").all() and (tmp_path / "c" / "a.csv").is_file()
    assert not (tmp_path / "c" / "a.png").exists()
    monkeypatch.setattr(W, "WEIGHTS_DIR", tmp_path / "no_weights")
    with pytest.raises(SystemExit, match="no_weights holds no weights.*method=classical"):
        digitize([str(archive / "a.png"), f"out={tmp_path / 'p'}"])


def test_names_are_unique_and_stable(tmp_path):
    for rel in ("x/p.png", "y/p.png", "p.png", "q.PNG"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    names, _ = find_images([str(tmp_path / "x"), str(tmp_path / "y"), str(tmp_path / "*.png"), str(tmp_path)])
    assert list(names) == ["p", "p-2", "p-3", "q"]          # each file once, named in the order given


def _relative_error(read: pd.Series, truth: pd.Series) -> float:
    """RMS of the reading's error (its mean removed, as the metric does) over the truth's RMS about its mean."""
    e = read.to_numpy() - truth.to_numpy()
    return float(np.std(e) / np.std(truth.to_numpy()))


def test_every_lead_of_the_csv_and_the_wfdb_record_is_the_page_s_own_lead(smoke_data, tmp_path):
    """The classical digitizer on the clean synthetic pages, read back from the CSV and the WFDB record and
    compared with the generator's truth lead by lead (II quarter by quarter): a column that reads any lead well
    (error <= 0.2 of the truth's size) reads its own, nearer by a margin than any other lead printed over the same
    samples; so two leads swapped in the files fail."""
    import wfdb

    data = smoke_data
    fs_of = pd.read_csv(data / "train.csv", dtype={"id": str}).set_index("id")["fs"]
    well = 0
    for image in sorted((data / "train").glob("*/*-0001.png")):
        rid, out = image.parent.name, tmp_path / image.parent.name
        fs = int(fs_of[rid])
        digitize([str(image), f"out={out}", "method=classical", "plot=false", "wfdb=true", f"fs={fs}"])
        truth = pd.read_csv(image.parent / f"{rid}.csv")
        csv = pd.read_csv(out / f"{image.stem}.csv")
        rec = wfdb.rdrecord(str(out / image.stem))
        wf = pd.DataFrame(rec.p_signal, columns=rec.sig_name)
        assert len(csv) == len(truth) == G.sig_len(fs) and rec.fs == fs
        for lead in G.LEADS:
            a, b = G.lead_sample_window(lead, fs)
            assert csv[lead].iloc[a:b].notna().all() and csv[lead].drop(csv.index[a:b]).isna().all(), lead
            np.testing.assert_allclose(wf[lead], csv[lead], atol=1e-3, equal_nan=True, err_msg=lead)
            quarters = [j * len(csv) // 4 for j in range(5)]
            for lo, hi in [(lo, hi) for lo, hi in zip(quarters, quarters[1:]) if a <= lo and hi <= b]:
                err = {other: _relative_error(csv[lead].iloc[lo:hi], truth[other].iloc[lo:hi]) for other in G.LEADS
                       if truth[other].iloc[lo:hi].notna().all()}
                nearest = min(err, key=err.get)
                if err[nearest] <= 0.2:                               # read well: as which lead?
                    runner_up = min(v for other, v in err.items() if other != nearest)
                    assert nearest == lead and err[lead] < runner_up / 1.5, \
                        f"{image.name}, column {lead} over samples {lo}..{hi}: reads as {nearest} (error {err})"
                    well += 1
    assert well >= 30, f"only {well} of 60 lead windows read well"      # at least two pages' worth checked
