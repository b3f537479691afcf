"""Stage 0 post-processing: sub-pixel heatmap decoding, the RANSAC homography, batched prediction."""
import cv2
import numpy as np
import pytest
import torch

from data import geometry as G
from pagekit.image import rot90_points
from stage0_keypoints.decode import decode_heatmaps, fit_page, normalize_page
from stage0_keypoints.targets import canonical_keypoints, heatmaps


def test_decoding_is_sub_pixel():
    rng = np.random.default_rng(0)
    pts = rng.uniform(5, 59, (17, 2))
    hm = heatmaps(pts, 64, sigma=1.5)
    dec, conf = decode_heatmaps(hm)
    assert np.abs(dec - pts).max() < 0.05          # integer argmax alone would be off by up to 0.5 px
    assert (conf > 0.6).all()


def test_homography_recovers_a_known_warp_despite_outliers():
    canon = canonical_keypoints()
    H_true = np.array([[0.9, 0.08, 150.0], [-0.05, 1.1, 80.0], [2e-5, -1e-5, 1.0]])   # canonical -> image
    img_pts = cv2.perspectiveTransform(canon.reshape(-1, 1, 2), H_true).reshape(-1, 2)
    rng = np.random.default_rng(1)
    noisy = img_pts + rng.normal(0, 1.0, img_pts.shape)
    noisy[[2, 9]] += [300, -250]                    # two wild detections
    fit = fit_page(np.arange(len(noisy)), noisy, np.ones(len(noisy)))
    assert fit.ok and fit.inliers == len(noisy) - 2
    back = cv2.perspectiveTransform(img_pts.reshape(-1, 1, 2), fit.H).reshape(-1, 2)
    assert np.abs(back - canon).max() / G.PX_PER_MM < 0.5      # within half a millimetre everywhere
    assert fit.reproj_mm < 0.5


def test_too_few_confident_points_fail_cleanly():
    fit = fit_page(np.zeros(0, int), np.zeros((0, 2)), np.zeros(0))   # no confident peak at all
    assert not fit.ok and fit.H is None


def test_a_singular_homography_fails_cleanly(monkeypatch):
    """RANSAC on degenerate peaks (early in training) can return a singular H: not a page, and no crash (it once
    stopped a training run in validation with numpy's LinAlgError)."""
    import stage0_keypoints.decode as D

    canon = canonical_keypoints()
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]])
    monkeypatch.setattr(D.cv2, "findHomography", lambda *a, **k: (singular, np.ones((len(canon), 1), np.uint8)))
    fit = fit_page(np.arange(len(canon)), canon + 5.0, np.ones(len(canon)))
    assert not fit.ok and fit.H is None


def test_normalize_page_puts_a_corner_where_it_belongs():
    img = np.full((300, 400, 3), 255, np.uint8)
    img[10:14, 20:24] = 0                          # a dark square at image (21.5, 11.5)
    H = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1]])  # image -> page: scale 2
    page = normalize_page(img, H)
    ys, xs = np.nonzero(page[..., 0] < 128)
    assert abs(xs.mean() - 43.5) < 1.5 and abs(ys.mean() - 23.5) < 1.5 and page.shape[:2] == (G.PAGE_H, G.PAGE_W)


def test_rot90_points_follow_np_rot90():
    img = np.zeros((8, 8), np.uint8)
    img[1, 5] = 1
    for k in range(4):
        rot = np.rot90(img, -k)
        (y,), (x,) = np.nonzero(rot)
        np.testing.assert_allclose(rot90_points(np.array([[5.0, 1.0]]), 8, k)[0], [x, y])


class DotFinder(torch.nn.Module):
    """Stands in for a trained model: every heatmap peaks on the brightest blob of the input."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        img = batch["image"].float().mean(1)                      # (B, S, S)
        B, S, _ = img.shape
        yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
        w = (img > 128).float()
        cx = (w * xx).sum((1, 2)) / w.sum((1, 2))
        cy = (w * yy).sum((1, 2)) / w.sum((1, 2))
        g = torch.exp(-((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / (2 * 1.5 ** 2))
        prob = g.clamp(1e-6, 1 - 1e-6)[:, None].expand(B, 17, S, S)
        return {"heatmap": torch.logit(prob), "orientation": torch.zeros(B, 4)}


def test_predict_maps_keypoints_back_to_raw_pixels_with_and_without_tta():
    from stage0_keypoints.predict import predict

    img = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(img, (260, 90), 12, (255, 255, 255), -1)      # the "keypoint" at raw (260, 90)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    for tta in (False, True):
        res = predict(DotFinder(), [img, grey], input_size=64, tta=tta, batch_size=1)
        assert len(res) == 2
        for r in res:
            assert r.keypoints.shape == (17, 2) and 0 <= r.orientation < 4
            np.testing.assert_allclose(r.keypoints, np.tile([260, 90], (17, 1)), atol=4.0)  # 1 input px = 6.25 raw px
            assert not r.ok                                 # 17 identical points give no homography


def test_page_layout_resolves_confused_lead_names():
    """Channels that peak higher on a neighbouring lead's label still get their own label back."""
    from stage0_keypoints.decode import peak_candidates

    canon = canonical_keypoints()
    s = 256 / G.PAGE_W
    A = np.array([[s * 0.95, 0.03, 10.0], [-0.02, s * 0.95, 30.0], [0, 0, 1]])    # canonical -> input px
    true = cv2.perspectiveTransform(canon.reshape(-1, 1, 2), A).reshape(-1, 2)
    hm = heatmaps(true, 256, sigma=2.0)
    rng = np.random.default_rng(3)
    for k in range(13):                       # every lead name also lights up on another lead's label, brighter
        decoy = true[(k + 1 + rng.integers(11)) % 13]
        hm[k] = np.maximum(0.6 * hm[k], heatmaps(decoy[None], 256, 2.0)[0])
    argmax, _ = decode_heatmaps(hm)
    assert (np.linalg.norm(argmax[:13] - true[:13], axis=1) > 5).all()    # argmax alone gets every name wrong
    fit = fit_page(*peak_candidates(hm))
    inside = ((true >= 0) & (true < 256)).all(1)          # two page corners fall outside this frame
    assert fit.ok and (fit.found == inside).all()
    assert np.abs(fit.keypoints[inside] - true[inside]).max() < 0.2
    assert np.abs(fit.keypoints - true).max() < 1.0        # the others: projected from the fitted page


def test_unreadable_training_image_is_left_out_with_a_warning(tmp_path):
    import pytest

    from data.synth import signals
    from data.synth.generate import render_image
    from stage0_keypoints.dataset import build_cache

    frame = signals.to_competition_frame(signals.simulate(250, np.random.default_rng(0)), 250)
    img, label = render_image(frame, 250, "0001", np.random.default_rng(0), "1")
    good, broken = tmp_path / "1-0001.png", tmp_path / "2-0001.png"
    cv2.imwrite(str(good), img)
    label.save(tmp_path / "1-0001.label.json")
    broken.write_bytes(b"not a png")
    label.save(tmp_path / "2-0001.label.json")
    with pytest.warns(UserWarning, match=r"1 of 2 images left out:\n.*2-0001.png: cannot read image"):
        items = build_cache([good, broken], tmp_path / "cache", 64, progress=False)
    assert len(items) == 1 and np.load(items[0])["image"].shape == (64, 64, 3)


def test_a_homography_that_folds_the_page_is_not_a_page():
    import cv2

    from data import geometry as G
    from stage0_keypoints.decode import plausible_page

    page = G.page_corners().astype(np.float32)
    photo = np.float32([[300, 200], [3700, 400], [3600, 2900], [200, 2700]])     # a tilted photo of the page
    assert plausible_page(cv2.getPerspectiveTransform(photo, page))
    bowtie = photo[[0, 2, 1, 3]]                                                  # two corners swapped
    assert not plausible_page(cv2.getPerspectiveTransform(bowtie, page))
    beyond = np.float32([[0, 0], [1000, 0], [1000, 1000], [0, 1000]])
    far = cv2.getPerspectiveTransform(page, beyond) @ np.diag([1.0, 1.0, 1.0])
    far[2] = [0.001, 0.0, -1.0]                                                   # the horizon crosses the page
    assert not plausible_page(np.linalg.inv(far))


def test_a_page_outline_outside_the_image_is_measured_in_mm_of_the_page():
    """An image of the whole page: its corners on the image's.  An image cut to rows 300-1300 and columns 100-2100
    of the page, at half size: the corners fall 400 px (50.8 mm) below it and 300 px (38.1 mm) above."""
    from stage0_keypoints.decode import OUTSIDE_MM, outside_mm

    assert outside_mm(np.eye(3), (1700, 2200)) == pytest.approx(0.0, abs=0.1)
    crop = np.array([[2.0, 0, 100], [0, 2.0, 300], [0, 0, 1]])        # image px -> page px
    assert outside_mm(crop, (500, 1000)) == pytest.approx(400 / G.PX_PER_MM, rel=0.01)
    assert outside_mm(crop, (500, 1000)) > OUTSIDE_MM > outside_mm(np.eye(3), (1700, 2200))
