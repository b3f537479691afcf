"""The folder CLI for paper archives (python -m inference.digitize): per image a CSV in the train-CSV layout, a
picture and a WFDB record; a summary with per-lead confidence and named failures; resume; workers; exit status."""
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from data import geometry as G
from inference.digitize import SUMMARY_COLUMNS, find_images
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
    with pytest.raises(SystemExit, match="layout=auto needs a stage 2 that reads any rows.*pass layout=3x4"):
        digitize([str(archive), f"out={out}", _ckpts(smoke_runs)])          # the smoke stage 2 is model=whole
    capsys.readouterr()
    summary = digitize([str(archive), f"out={out}", _ckpts(smoke_runs), "wfdb=true", "fs=250", "device=cpu",
                        "layout=3x4+II"])
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
    ok = summary[summary["status"].isin(["ok", "check"])]
    assert len(ok) == 24 and set(ok["lead"]) == set(G.LEADS)
    check = ok[ok["status"] == "check"]                                 # smoke models: doubts are likely
    assert (check["reason"].str.len() > 0).all() and (ok.loc[ok["status"] == "ok", "reason"].fillna("") == "").all()
    assert ok["trace_prob"].between(0, 1).all() and ok["gap_share"].between(0, 1).all()
    assert (ok["layout"] == "3x4+II").all()
    failed = summary[summary["status"] == "failed"].set_index("name")["reason"]
    assert failed["broken"].startswith("unreadable image") and failed["tiny"].startswith("image too small")
    assert not list(out.glob("*.tmp*")) and [p.name for p in out.glob(".*")] == [".digitize"]   # records only

    done = {p: p.stat().st_mtime_ns for p in out.glob("*.csv") if p.name != "summary.csv"}
    os.remove(out / "a.csv")                                            # as if the first run had died on it
    again = digitize([str(archive), f"out={out}", _ckpts(smoke_runs), "wfdb=true", "fs=250", "device=cpu",
                      "workers=2", "layout=3x4+II"])
    assert "1 of 4 images already digitized in" in capsys.readouterr().out
    assert (out / "ward2__b.csv").stat().st_mtime_ns == done[out / "ward2__b.csv"]   # not redone
    assert (out / "a.csv").is_file() and len(again[again["status"] != "failed"]) == 24   # old rows kept, new added
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
        assert len(csv) == len(truth) == G.sig_len(fs) and rec.fs == fs and rec.units == ["mV"] * 12
        assert rec.sig_name == list(G.LEADS) == list(csv.columns)
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


def _classical(paths, out, *more):
    return digitize([*map(str, paths), f"out={out}", "method=classical", "plot=false", *more])


def test_a_rerun_skips_what_these_options_made_redoes_what_others_made_and_says_which(archive, tmp_path, capsys):
    import re

    folder, out = tmp_path / "in", tmp_path / "o"
    folder.mkdir()
    for name in ("0001.png", "b.png"):                                  # a name that reads as a number, too
        shutil.copy(archive / "a.png", folder / name)
    _classical([folder], out, "fs=250")
    assert len(pd.read_csv(out / "0001.csv")) == G.sig_len(250)
    capsys.readouterr()
    _classical([folder], out, "fs=500", "wfdb=true")
    text = capsys.readouterr().out
    assert re.search(r"(?m)^2 images were digitized with other options \(fs: 250 -> 500; wfdb: False -> True\): "
                     r"redone$", text)
    assert len(pd.read_csv(out / "0001.csv")) == G.sig_len(500) and (out / "0001.hea").is_file()
    _classical([folder], out, "fs=500", "wfdb=true")
    assert re.search(r"(?m)^2 of 2 images already digitized in .*: skipped$", capsys.readouterr().out)
    (out / ".digitize" / "b.json").unlink()                              # as a version that kept no records left it
    (out / "0001.csv").unlink()                                          # and an image to redo
    summary = _classical([folder], out, "fs=500")                        # wfdb=false: the old record goes
    text = capsys.readouterr().out
    assert re.search(r"(?m)^1 images have a CSV from a version that recorded no options: kept", text)
    assert not (out / "0001.hea").exists() and (out / "0001.csv").is_file() and (out / "b.hea").is_file()
    on_disk = pd.read_csv(out / "summary.csv", dtype=str)
    assert list(on_disk.columns) == SUMMARY_COLUMNS and len(summary) == len(on_disk) == 24   # one record each
    assert on_disk.groupby("name").size().to_dict() == {"0001": 12, "b": 12}
    assert on_disk.loc[on_disk["name"] == "0001", "lead"].tolist() == list(G.LEADS)


def test_the_summary_covers_every_image_after_interrupted_runs_and_all_done_is_success(archive, tmp_path, capsys,
                                                                                       monkeypatch):
    import inference.digitize as D

    out = tmp_path / "o"
    one = D.write_outputs
    calls = []

    def killed_on_the_second(*a, **kw):
        calls.append(a[1])
        if len(calls) == 2:
            raise KeyboardInterrupt                                    # the run dies here; no summary written
        return one(*a, **kw)

    monkeypatch.setattr(D, "write_outputs", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        _classical([archive], out)
    assert (out / f"{calls[0]}.csv").is_file() and not (out / "summary.csv").exists()
    monkeypatch.setattr(D, "write_outputs", one)
    _classical([archive], out)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["name"]) == {"a", "ward2__b", "broken", "tiny"}           # the first run's image included
    assert (summary.groupby("name").size() == summary.groupby("name")["status"].first().map(
        {"ok": 12, "failed": 1})).all()                                           # one record per image
    capsys.readouterr()
    again = _classical([archive], out)                                  # nothing left but the two bad files
    assert "2 of 4 images already digitized" in capsys.readouterr().out
    assert len(again) == len(summary)
    for bad in ("broken.png", "tiny.png"):
        os.remove(archive / bad)
    _classical([archive], out)                                          # all done: exit 0, no exception
    text = capsys.readouterr().out
    assert "2 of 2 images already digitized" in text and "2 of 2 images digitized into" in text


@pytest.mark.parametrize("option, message", [
    ("fs=0", "fs=0: the output sampling rate in Hz must be from 50 to 10000"),
    ("fs=-5", "fs=-5: the output sampling rate"),
    ("shard=4/4", "shard='4/4': expected i/n with 0 <= i < n"),
    ("shard=x", "shard='x': expected i/n"),
    ("workers=0", "workers=0: must be 1 or more"),
])
def test_a_bad_option_ends_with_one_line_and_writes_nothing(archive, tmp_path, capsys, option, message):
    with pytest.raises(SystemExit, match=f"^error: {message}"):
        _classical([archive / "a.png"], tmp_path / "o", option)
    assert not (tmp_path / "o").exists()


def test_out_naming_a_file_and_outputs_inside_the_input_folder(archive, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"^error: out=.*a\.png is a file: out names the folder"):
        _classical([archive], archive / "a.png")
    _classical([archive], archive / "read", "plot=true")               # outputs inside the folder it reads
    assert (archive / "read" / "a.png").is_file() and cv2.imread(str(archive / "a.png")).shape[0] > 1000
    capsys.readouterr()
    _classical([archive], archive / "read", "plot=true")               # its pictures are not read as scans
    text = capsys.readouterr().out
    assert "images inside out=" in text and "2 of 4 images already digitized" in text


def test_shards_are_disjoint_cover_the_folder_and_merge_into_one_summary(archive, tmp_path):
    from inference.digitize import in_shard

    names = [f"scan_{i:05d}" for i in range(1000)]
    parts = [{n for n in names if in_shard(n, (i, 3))} for i in range(3)]
    assert sum(map(len, parts)) == len(names) and set().union(*parts) == set(names)
    assert all(250 < len(p) < 420 for p in parts)                      # roughly even
    out = tmp_path / "o"
    everything = {"a", "ward2__b", "broken", "tiny"}
    for i in range(2):
        try:
            _classical([archive], out, f"shard={i}/2")
        except SystemExit:                                             # a shard of only bad files fails
            pass
        done = set(pd.read_csv(out / "summary.csv")["name"])
        assert done == {n for n in everything if in_shard(n, (0, 2))} | (everything if i else set()), i
    assert set(pd.read_csv(out / "summary.csv")["name"]) == everything


def test_a_truncated_scan_is_named_as_such_and_gives_no_reading(archive, tmp_path):
    page = cv2.imread(str(archive / "a.png"))
    cv2.imwrite(str(tmp_path / "full.jpg"), page)
    data = (tmp_path / "full.jpg").read_bytes()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.jpg").write_bytes(data[:int(len(data) * 0.9)])         # a copy interrupted at 90 %
    shutil.copy(tmp_path / "full.jpg", folder / "whole.jpg")
    summary = _classical([folder], tmp_path / "o")
    row = summary.set_index("name").loc["cut"]
    assert row["status"] == "failed" and row["reason"].startswith("truncated image: ")
    assert not (tmp_path / "o" / "cut.csv").exists() and (tmp_path / "o" / "whole.csv").is_file()


def test_outputs_are_written_with_the_user_s_umask(archive, tmp_path):
    old = os.umask(0o022)
    try:
        _classical([archive / "a.png"], tmp_path / "o", "plot=true", "wfdb=true")
    finally:
        os.umask(old)
    for name in ("a.csv", "a.png", "summary.csv"):
        assert (tmp_path / "o" / name).stat().st_mode & 0o777 == 0o644, name


def test_the_cluster_array_recipe_composes_and_gives_each_job_its_shard(archive, tmp_path):
    import subprocess
    import sys

    from hydra import compose, initialize_config_dir
    from hydra.utils import get_class

    from scripts.digitize_array import folder_cli_args

    root = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3"):
        cfg = compose("digitize", overrides=["hydra/launcher=slurm", f"paths=[{archive}]", f"out={tmp_path / 'o'}",
                                             "shards=2", "shard=1", "options=['method=classical','plot=false']"],
                      return_hydra_config=True)
    assert get_class(cfg.hydra.launcher._target_).__name__ == "SlurmLauncher"
    args = folder_cli_args(cfg)
    assert args == [str(archive), f"out={tmp_path / 'o'}", "shard=1/2", "method=classical", "plot=false"]
    for i in range(2):                                                   # what the two jobs of the array run
        try:
            digitize([*args[:2], f"shard={i}/2", *args[3:]])
        except SystemExit:                                               # a part holding only bad files
            pass
    assert set(pd.read_csv(tmp_path / "o" / "summary.csv")["name"]) == {"a", "ward2__b", "broken", "tiny"}
    cfg.shard = 2
    with pytest.raises(SystemExit, match="shard=2: expected 0 <= shard < shards"):
        folder_cli_args(cfg)
    res = subprocess.run([sys.executable, "scripts/digitize_array.py", "--cfg", "job", "paths=[x]", "shards=4",
                          "shard=3"], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "shard: 3" in res.stdout and "shards: 4" in res.stdout


def test_a_reading_with_a_doubt_is_check_with_the_doubt_named_and_still_written(archive, tmp_path, monkeypatch):
    from inference.classical import ClassicalDigitizer
    from inference.pipeline import Reading

    clean = Reading({}, confidence={"I": {"gap_share": 0.1}}, flags={"no_page": False, "lattice_fallback": False})
    assert clean.status == "ok" and clean.doubts() == []
    cropped = Reading({}, confidence={"I": {"gap_share": 0.1}, "V2": {"gap_share": 0.7}}, flags={"no_page": True})
    assert cropped.status == "check"
    assert [d.split(",")[0] for d in cropped.doubts()] == ["no page outline found", "little trace found for V2 (over "
                                                                                    "half of it filled across gaps)"]
    run = ClassicalDigitizer.run

    def no_page(self, *a, **kw):
        readings = run(self, *a, **kw)
        for r in readings:
            r.flags = {"no_page": True, "lattice_fallback": True}
        return readings

    import inference.plot

    plot, titles = inference.plot.plot_leads, []
    monkeypatch.setattr(inference.plot, "plot_leads", lambda *a, title="", **kw: titles.append(title) or plot(
        *a, title=title, **kw))
    monkeypatch.setattr(ClassicalDigitizer, "run", no_page)
    summary = _classical([archive / "a.png"], tmp_path / "o", "plot=true")
    assert set(summary["status"]) == {"check"} and (tmp_path / "o" / "a.csv").is_file()
    assert titles == ["a (3x4+II)  CHECK: " + summary["reason"].iloc[0]]      # the picture says it too
    assert summary["reason"].str.startswith("no page outline found").all()
    assert "the 5 mm grid could not be followed" in summary["reason"].iloc[0]


def test_a_batch_is_read_in_one_call_and_a_failing_one_image_by_image(archive, tmp_path, monkeypatch):
    from inference.classical import ClassicalDigitizer

    run, calls = ClassicalDigitizer.run, []

    def counted(self, paths, fs, lengths):
        calls.append([Path(p).name for p in paths])
        if any(Path(p).name == "b.jpg" for p in paths) and len(paths) > 1:
            raise RuntimeError("a batch with b fails")                 # as one bad page fails a whole batch
        if Path(paths[0]).name == "b.jpg":
            raise RuntimeError("boom")
        return run(self, paths, fs, lengths)

    monkeypatch.setattr(ClassicalDigitizer, "run", counted)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        shutil.copy(archive / "a.png", folder / name)
    shutil.copy(archive / "ward2" / "b.jpg", folder / "b.jpg")
    t0 = time.perf_counter()
    summary = _classical([folder], tmp_path / "o", "batch_size=2", "fs=250")
    elapsed = time.perf_counter() - t0
    assert calls == [["a.png", "b.jpg"], ["a.png"], ["b.jpg"], ["c.png"]]
    assert summary["seconds"].between(0.0, elapsed).all()              # each image's share of the run
    first = (tmp_path / "o" / "c.csv").read_text().splitlines()[1].split(",")
    assert len(first) == 12 and all(len(v.split(".")[-1]) <= 4 for v in first if v)   # 12 leads, 0.1 uV
    per_image = summary.drop_duplicates("name").set_index("name")
    assert per_image.loc["b", "reason"] == "RuntimeError: boom" and per_image.loc["b", "status"] == "failed"
    assert set(per_image.loc[["a", "c"], "status"]) == {"ok"} and per_image.loc["a", "image"] == str(folder / "a.png")
    assert len(pd.read_csv(tmp_path / "o" / "c.csv")) == G.sig_len(250)
    assert [p.name for p in (tmp_path / "o").glob(".*")] == [".digitize"]          # records, no temp files


def test_the_options_record_names_the_models_by_content(tmp_path):
    from inference.digitize import Options

    model = tmp_path / "s2.pt"
    model.write_bytes(b"weights one")
    rec = Options(method="pipeline", checkpoints=[str(model)], fs=250).record()
    assert rec["fs"] == 250 and rec["checkpoints"][0].startswith("s2.pt:") and len(rec["checkpoints"][0]) == 22
    model.write_bytes(b"weights two")                                 # replaced in place: another model
    assert Options(method="pipeline", checkpoints=[str(model)], fs=250).record() != rec
    assert "checkpoints" not in Options(method="classical").record()
    assert Options(method="classical", extract={"min_prob": 0.9}).make().extract_cfg.min_prob == 0.9
    with pytest.raises(ValueError, match="method must be pipeline or classical, got 'magic'"):
        Options(method="magic").make()


def test_a_page_of_no_layout_we_read_is_failed_with_its_reason_and_nothing_written(archive, tmp_path, monkeypatch):
    from inference.classical import ClassicalDigitizer
    from inference.pipeline import Reading

    def of_no_layout(self, paths, fs, lengths):
        return [Reading({}, None, {}, {"no_page": True}, None, failure="5 trace rows found (y = 1, 2, 3, 4, 5 px)")
                for _ in paths]

    monkeypatch.setattr(ClassicalDigitizer, "run", of_no_layout)
    with pytest.raises(SystemExit):                                   # no image read: exit 1
        _classical([archive / "a.png"], tmp_path / "o", "wfdb=true")
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert summary["status"].tolist() == ["failed"] and summary["layout"].isna().all()
    assert summary["reason"].iloc[0] == "not read: 5 trace rows found (y = 1, 2, 3, 4, 5 px)"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [".digitize", "summary.csv"]


def test_the_classical_method_reads_only_the_competition_s_page(archive, tmp_path):
    with pytest.raises(SystemExit, match="method=classical reads only the competition's page"):
        _classical([archive / "a.png"], tmp_path / "o", "layout=6x2")
    with pytest.raises(SystemExit, match="unknown layout '7x7': known 12x1, 3x4, 3x4\\+II"):
        digitize([str(archive / "a.png"), f"out={tmp_path / 'o'}", "layout=7x7"])
    summary = _classical([archive / "a.png"], tmp_path / "o", "layout=3x4+II", "plot=false")
    assert summary["layout"].eq("3x4+II").all()
