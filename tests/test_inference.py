"""The inference pipeline: the submission CLI (exact rows, a bad image costs only itself), validation mode with
ground-truth rectification, the single-image call, and probability-space ensembles."""
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from data import geometry as G
from data.submission import expected_ids, read_table
from inference.__main__ import main
from pagekit import metric
from pagekit.ensemble import EnsembleModel
from pagekit.image import read_image


def _ckpts(runs, stages=(0, 1, 2)):
    return "checkpoints=[" + ",".join(str(runs[s]) for s in stages) + "]"


def test_submission_has_exactly_the_rows_of_test_csv_and_a_bad_image_costs_only_itself(smoke_runs, tmp_path):
    src = smoke_runs["data"]
    data = tmp_path / "comp"
    data.mkdir()
    shutil.copy(src / "test.csv", data)
    shutil.copy(src / "solution.parquet", data)
    shutil.copytree(src / "test", data / "test")
    table = pd.read_csv(data / "test.csv", dtype={"id": str})
    ids = table["id"].unique()
    assert len(ids) == 2
    (data / "test" / f"{ids[0]}.png").write_bytes(b"not a png")           # one unreadable test image
    out = tmp_path / "submission.parquet"
    with pytest.warns(UserWarning, match=f"(?s)1 images failed.*{ids[0]}"):
        score = main([f"data_dir={data}", _ckpts(smoke_runs), f"out={out}", "tta_flip=true"])
    sub = read_table(out)
    assert len(sub) == len(table.index.repeat(table["number_of_rows"]))
    assert pd.Index(sub["id"]).equals(expected_ids(table)) and np.isfinite(sub["value"]).all()
    bad = sub["id"].str.startswith(f"{ids[0]}_")
    assert (sub.loc[bad, "value"] == 0).all() and (sub.loc[~bad, "value"] != 0).any()
    # solution.parquet beside: scored, and the score is the metric's on the written file
    assert score == pytest.approx(metric.score(read_table(data / "solution.parquet"), sub), abs=1e-9)


def test_validation_mode_scores_per_type_with_ground_truth_rectification(smoke_runs, tmp_path, capsys):
    out = tmp_path / "val.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                   # no image may fail
        score = main([f"data_dir={smoke_runs['data']}", _ckpts(smoke_runs, (2,)), "rectify=gt", "split=val",
                      "n_folds=2", f"out={out}", "extract.method=viterbi"])
    text = capsys.readouterr().out
    assert f"score_db {score:.4f}" in text
    # the printed score is the metric's of the written file against the truth CSVs (built here, not by the code
    # under test): every short lead is its CSV column's non-empty window, II the whole column
    sub = read_table(out)
    image_ids = sub["id"].str.split("_").str[0].unique()
    fs_of = pd.read_csv(smoke_runs["data"] / "train.csv", dtype={"id": str}).set_index("id")["fs"]
    truth = []
    for image_id in image_ids:
        rid = image_id.split("-")[0]
        csv = pd.read_csv(smoke_runs["data"] / "train" / rid / f"{rid}.csv")
        for lead in csv.columns:
            v = csv[lead].dropna().to_numpy()
            truth.append(pd.DataFrame({"id": [f"{image_id}_{r}_{lead}" for r in range(len(v))], "fs": fs_of[rid],
                                       "value": v}))
    assert len(image_ids) >= 2 and score == pytest.approx(metric.score(pd.concat(truth), sub), abs=1e-9)
    assert "0001" in text and "stage2" in text and "rectify (labels)" in text
    with pytest.raises(SystemExit, match="no stage \\[0, 1\\]"):
        main([f"data_dir={smoke_runs['data']}", _ckpts(smoke_runs, (2,)), "split=val", "n_folds=2"])


def test_single_image_gives_a_12_lead_frame_like_a_train_csv_and_a_plot(smoke_runs):
    from inference.pipeline import Digitizer

    image = next((smoke_runs["data"] / "train").glob("*/*-0001.png"))
    dig = Digitizer([smoke_runs[s] for s in (0, 1, 2)], device="cpu")
    df, fig = dig.digitize(image, fs=250, plot=True)
    assert list(df.columns) == list(G.LEADS) and len(df) == G.sig_len(250)
    assert df["II"].notna().all()
    a, b = G.lead_sample_window("V5", 250)
    assert df["V5"].iloc[a:b].notna().all() and df["V5"].drop(df.index[a:b]).isna().all()
    assert len(fig.axes[0].lines) == 12
    assert set(dig.timings) == {"read", "stage0", "stage1", "stage2", "extract"}


def test_stage_2_in_bf16_gives_the_fp32_probabilities_to_bf16_precision(smoke_runs):
    """precision=bf16 (the CPU default where bf16 is native): stage 2 under autocast, channels-last."""
    from inference.pipeline import Digitizer

    image = next((smoke_runs["data"] / "train").glob("*/*-0001.png"))
    ckpts = [smoke_runs[s] for s in (0, 1, 2)]
    fp32, bf16 = (Digitizer(ckpts, device="cpu", precision=p) for p in ("fp32", "bf16"))
    assert fp32.dtype is None and bf16.dtype is torch.bfloat16
    pages, _ = fp32.rectifier.rectify([read_image(image)], [image])
    a, b = fp32.probabilities(pages), bf16.probabilities(pages)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
    assert np.abs(a - b).max() < 0.05 and np.abs(a - b).mean() < 0.005


class _Fixed(nn.Module):
    def __init__(self, heat: float, cls: list[float]):
        super().__init__()
        self.heat, self.cls = heat, torch.tensor(cls)

    def forward(self, batch):
        n = batch["image"].shape[0]
        return {"heatmap": torch.full((n, 2, 2), self.heat), "orientation": self.cls.expand(n, -1)}


def test_ensemble_averages_probabilities_with_weights():
    a, b = _Fixed(2.0, [2.0, 0.0, 0.0, 0.0]), _Fixed(-1.0, [0.0, 0.0, 3.0, 0.0])
    out = EnsembleModel([a, b], [3.0, 1.0])({"image": torch.zeros(1, 3, 4, 4)})
    sig = lambda v: 1 / (1 + np.exp(-v))                                   # noqa: E731
    assert torch.sigmoid(out["heatmap"]).flatten()[0].item() == pytest.approx(0.75 * sig(2.0) + 0.25 * sig(-1.0),
                                                                            abs=1e-5)
    p = torch.softmax(out["orientation"], 1)[0]
    want = 0.75 * torch.softmax(a.cls, 0) + 0.25 * torch.softmax(b.cls, 0)
    assert torch.allclose(p, want, atol=1e-5)


def test_the_classical_baseline_reads_clean_pages_and_beats_zeros(smoke_runs, tmp_path, capsys):
    """No weights: 0001 pages of the smoke set digitized from their ink; far above the 0 mV floor."""
    from inference.baseline import main as baseline

    args = [f"data_dir={smoke_runs['data']}", "split=train", "types=0001"]
    zero = baseline(args + ["method=zero", f"out={tmp_path / 'z.parquet'}"])
    classical = baseline(args + [f"out={tmp_path / 'c.parquet'}"])
    assert "score_db" in capsys.readouterr().out
    assert zero < 2 and classical > 10 and len(read_table(tmp_path / "c.parquet")) == len(read_table(tmp_path /
                                                                                                       "z.parquet"))


def test_the_classical_ink_map_ignores_coloured_grid_and_masks_the_printed_layout():
    from data.synth import signals
    from data.synth.render import PageStyle, render_page
    from inference.classical import layout_mask
    from pagekit.image import ink

    frame = signals.to_competition_frame(signals.simulate(500, np.random.default_rng(1)), 500)
    page = render_page(frame, 500, PageStyle())                     # red grid, near-black trace
    dark = ink(page)
    grid_only = (page[..., 2] > 200) & (page[..., 1] < 100)          # pure red major grid pixels
    assert np.percentile(dark[grid_only], 99) < 0.05 and np.percentile(dark, 99.9) > 0.5   # trace crossings aside
    mask = layout_mask(1.0)
    x0 = int(G.X_T0)
    assert mask[:, :x0].all() and not mask[int(G.BASELINES[0]), x0 + 100]
    cx, cy = G.lead_label_centre(G.lead_slots()[0])
    assert mask[int(cy), int(cx)]


def test_the_transfer_benchmark_recovers_a_render_s_page_map_from_its_plotted_pixels():
    """scripts/eval_transfer.py's ground truth: the homography fitted to ECG-Image-Kit-style plotted_pixels."""
    import sys

    import cv2

    from data.synth import signals
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from eval_transfer import exact_homography, overlapping, sample_positions

    fs = 500
    frame = signals.to_competition_frame(signals.simulate(fs, np.random.default_rng(2)), fs)
    H = np.array([[0.9, 0.05, 40.0], [-0.03, 0.95, 25.0], [1e-5, -2e-5, 1.0]])    # canonical page -> image
    doc = {"sampling_frequency": fs, "leads": []}
    for slot, pts in zip(G.lead_slots(), G.trace_points(frame, fs).values()):
        a, b = G.slot_sample_window(slot, fs)
        image = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), H).reshape(-1, 2)
        doc["leads"].append({"lead_name": slot.lead, "start_sample": a, "end_sample": b,
                             "plotted_pixels": image[:, ::-1].tolist()})                  # [y, x] as EIK writes
    canon, image = sample_positions(doc, frame)
    assert len(canon) == sum(b - a for a, b in (G.slot_sample_window(s, fs) for s in G.lead_slots()))
    fitted = exact_homography(canon, image)
    assert np.allclose(fitted / fitted[2, 2], H, atol=1e-4)
    tall = {lead: np.r_[np.zeros(50), 2.5, np.zeros(50)] for lead in ("V2", "V3")}
    assert overlapping({**tall, "I": np.zeros(101) + 0.3}) == {"V2", "V3"}
