"""Automatic labels: found from each record's own signal, verified with it, and enough to train on."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import geometry as G
from data.labels import PageLabel, label_path
from pagekit.autolabel import image_scale


@pytest.fixture(scope="module")
def unlabelled(smoke_data, tmp_path_factory):
    """The smoke competition without its label files, plus three kinds of bad input; the truth kept aside."""
    root = tmp_path_factory.mktemp("autolabel") / "comp"
    shutil.copytree(smoke_data, root)
    truth = {}
    for lp in sorted(root.glob("train/*/*.label.json")):
        truth[lp.name.replace(".label.json", ".png")] = PageLabel.load(lp)
        lp.with_name(lp.name.replace(".label.json", ".map.npz")).unlink()
        lp.unlink()
    a, b, c, d = sorted(p.name for p in (root / "train").iterdir())
    (root / "train" / a / f"{a}-0015.png").write_bytes(b"not an image")            # unreadable
    shutil.copy(root / "train" / c / f"{c}-0003.png", root / "train" / b / f"{b}-0003.png")   # another record's
    csv = root / "train" / d / f"{d}.csv"
    pd.read_csv(csv).assign(**{lead: np.nan for lead in G.LEADS}).to_csv(csv, index=False)   # no values
    return root, truth, (a, b, c, d)


def test_labels_match_the_generator_and_bad_input_is_named_not_labelled(unlabelled):
    from inference.autolabel import main

    root, truth, (a, b, c, d) = unlabelled
    df = main([f"data_dir={root}"]).set_index("image")
    assert df.loc[f"{a}-0015.png", "status"] == "failed" and "unreadable image" in df.loc[f"{a}-0015.png", "reason"]
    assert df.loc[f"{b}-0003.png", "status"] == "rejected"            # the trace of b is not on c's page
    assert not label_path(root / "train" / b / f"{b}-0003.png").is_file()
    assert (df.loc[[i for i in df.index if i.startswith(d)], "reason"].str.startswith("signal")).all()
    labelled = df[df.status == "labelled"]
    assert len(labelled) >= 6                                          # a: 0001, 0003; b: 0001, 0015; c: all
    signals = {r: pd.read_csv(root / "train" / r / f"{r}.csv") for r in (a, b, c)}
    for image in labelled.index:
        rid = image.split("-")[0]
        pts = np.concatenate(list(G.trace_points(signals[rid], _fs(root, rid)).values()))
        ours, true = PageLabel.load(label_path(root / "train" / rid / image)), truth[image]
        px_per_mm = image_scale(np.linalg.inv(true.homography())) * G.PX_PER_MM
        err_mm = np.linalg.norm(ours.canon_to_image(pts) - true.canon_to_image(pts), axis=1) / px_per_mm
        assert np.median(err_mm) < 0.1 and np.percentile(err_mm, 95) < 0.3, (image, np.median(err_mm))
        assert ours.orientation == true.orientation
        assert np.abs(ours.keypoints - true.keypoints).max() < 5          # image px
    again = main([f"data_dir={root}"]).set_index("image")             # resumable: labelled images are skipped
    assert set(again.index[again.status == "skipped"]) == set(labelled.index)
    scored = _eval_autolabel([f"data_dir={root}", f"truth_dir={smoke_data_dir(root, truth)}"])
    assert scored.loc["all", "accepted"] == len(labelled) and scored.loc["all", "wrong_accepted"] == 0
    assert scored.loc["all", "median_mm"] < 0.1


def smoke_data_dir(root: Path, truth: dict) -> Path:
    """A copy of ``root`` with the true label files back in place: the truth side of eval_autolabel."""
    true_root = root.parent / "truth"
    if not true_root.is_dir():
        shutil.copytree(root, true_root, ignore=shutil.ignore_patterns("*.label.json", "*.map.npz"))
        for name, label in truth.items():
            label.save(label_path(true_root / "train" / name.split("-")[0] / name))
    return true_root


def _eval_autolabel(argv):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from eval_autolabel import main

    return main(argv)


def _fs(root, rid) -> int:
    meta = pd.read_csv(root / "train.csv", dtype={"id": str})
    return int(meta.set_index("id").loc[rid, "fs"])


def test_stage0_trains_on_the_automatic_labels(unlabelled, tmp_path):
    from conftest import compose_cfg

    from engine.data import split_images
    from engine.loop import train
    from inference.autolabel import main

    root, _, _ = unlabelled
    if not list(root.glob("train/*/*.label.json")):
        main([f"data_dir={root}"])
    cfg = compose_cfg(["stage=0", "experiment=smoke", "data=competition", "data.n_folds=2", "data.num_workers=0"],
                      tmp_path / "run", root)
    train_images, val_images = split_images(cfg)
    assert sorted(map(str, train_images + val_images)) == sorted(
        str(p).replace(".label.json", ".png") for p in root.glob("train/*/*.label.json"))   # the labelled ones
    assert Path(train(cfg)["checkpoint"]).is_file()


def test_samples_off_the_image_count_as_infinitely_far_from_ink():
    import warnings

    from data.synth.signals import simulate, to_competition_frame
    from pagekit.autolabel import verify

    signals = to_competition_frame(simulate(500, np.random.default_rng(0)), 500)
    dark = np.ones((G.PAGE_H, G.PAGE_W), np.float32)                    # ink everywhere
    assert verify(dark, signals, 500, np.eye(3))[0] == 1.0
    off = np.array([[1, 0, 0.8 * G.PAGE_W], [0, 1, 0], [0, 0, 1.0]])    # most of the page beyond the right edge
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        on_ink, _, p90 = verify(dark, signals, 500, off)
    assert on_ink < 0.5 and p90 == np.inf


def test_a_low_resolution_photo_whose_trace_lies_between_pixels_is_on_ink_and_a_map_off_by_a_mm_is_not():
    """At 3 px/mm, 0.2 mm is under a pixel: the right map must not lose samples to where the stroke's pixels fall."""
    import cv2

    from data.synth.signals import simulate, to_competition_frame
    from pagekit.autolabel import scaling, verify

    k = 0.4                                                              # 3.1 image px per mm
    signals = to_competition_frame(simulate(500, np.random.default_rng(1)), 500)
    w, h = G.page_size(k)
    dark = np.zeros((h, w), np.uint8)
    for pts in G.trace_points(signals, 500).values():                   # a 1 px stroke, half a pixel below
        cv2.polylines(dark, [np.round((pts + 0.5) * k - 0.5 + [0, 0.5]).astype(np.int32)], False, 255, 1)
    dark = dark.astype(np.float32) / 255
    on_ink, steep, p90 = verify(dark, signals, 500, scaling(k))
    assert on_ink > 0.97 and steep > 0.95 and p90 < 0.35
    off = scaling(k) @ np.array([[1, 0, 0], [0, 1, 1.0 * G.PX_PER_MM], [0, 0, 1.0]])   # 1 mm low
    on_ink, steep, _ = verify(dark, signals, 500, off)
    assert on_ink < 0.9 and steep < 0.8
