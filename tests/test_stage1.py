"""Stage 1: sub-pixel lattice points, the robust surface fit, one-warp rectification, the fallback, the targets."""

import cv2
import numpy as np
import pytest

from data import geometry as G
from data.geometry import trace_points
from data.synth import signals
from data.synth.generate import render_image
from stage1_rectify.decode import lattice_points, peaks
from stage1_rectify.lattice import N_HLINES, N_VLINES, SPACING, node_grid, to_canonical
from stage1_rectify.metric import image_errors
from stage1_rectify.rectify import FitParams, fit_from_outputs, fit_lattice, rectify_image
from stage1_rectify.surface import fit_surface, identity_fit
from stage1_rectify.targets import IGNORE, lattice_targets
from stage1_rectify.warp import canonical_to_raw, dense_map


def _curl(p):
    x, y = p[:, 0] / G.PAGE_W, p[:, 1] / G.PAGE_H
    return p + np.stack([18 * np.sin(np.pi * y) * x, 25 * (x - 0.5) ** 2 - 12 * np.sin(2 * np.pi * x) * y], -1)


def test_weighted_average_peaks_are_sub_pixel():
    yy, xx = np.mgrid[0:40, 0:40]
    for dx, dy in [(0.0, 0.0), (0.3, -0.2), (0.49, 0.45), (-0.4, 0.1)]:
        heat = np.exp(-((xx - 20 - dx) ** 2 + (yy - 17 - dy) ** 2) / (2 * 1.5 ** 2))
        pts, conf = peaks(heat)
        assert len(pts) == 1 and conf[0] > 0.9
        np.testing.assert_allclose(pts[0], [20 + dx, 17 + dy], atol=0.01)
    # the plain average over a 3x3 window would be off by a third of a pixel: the power is what makes it exact
    heat = np.exp(-((xx - 20.45) ** 2 + (yy - 17) ** 2) / (2 * 1.5 ** 2))
    assert abs(peaks(heat, radius=1, power=1)[0][0, 0] - 20.45) > 0.25


def test_surface_recovers_a_known_warp_from_noisy_incomplete_points_with_outliers():
    rng = np.random.default_rng(0)
    ij = node_grid().reshape(-1, 2)
    xy = _curl(to_canonical(ij))
    keep = (rng.random(len(ij)) > 0.3) & ~((ij[:, 0] > 40) & (ij[:, 1] < 12))       # 30 % gone + a corner block
    ij, xy = ij[keep], xy[keep] + rng.normal(0, 0.8, (keep.sum(), 2))
    bad = rng.random(len(ij)) < 0.03                                                # wrong line index
    xy[bad, 0] += SPACING
    fit = fit_surface(ij, xy, smoothing=10.0)
    assert not fit.inliers[bad].any() and fit.inliers[~bad].mean() > 0.98
    q = rng.uniform([0, 0], [G.PAGE_W, G.PAGE_H], (5000, 2))                       # up to the page edges
    err_mm = np.linalg.norm(canonical_to_raw(fit, np.eye(3), q) - _curl(q), axis=1) / G.PX_PER_MM
    hole = (q[:, 0] > to_canonical(np.array([40, 0]))[0]) & (q[:, 1] < to_canonical(np.array([0, 12]))[1])
    assert np.median(err_mm) < 0.1 and err_mm[~hole].max() < 0.3
    assert err_mm[hole].max() < 1.0          # a 15 x 12 node corner extrapolated from its surroundings
    # without the surface (homography alone) the same page is off by millimetres
    assert np.median(np.linalg.norm(q - _curl(q), axis=1)) / G.PX_PER_MM > 0.8


def test_dense_map_and_point_map_agree_and_compose_the_homography():
    fit = fit_surface(node_grid().reshape(-1, 2), _curl(to_canonical(node_grid().reshape(-1, 2))))
    H = cv2.getPerspectiveTransform(np.float32([[0, 0], [800, 0], [800, 600], [0, 600]]),
                                    np.float32([[10, 20], [2150, 40], [2190, 1690], [5, 1650]]))
    k = 0.5
    mx, my = dense_map(fit, H, k)
    assert mx.shape == G.page_size(k)[::-1]
    for x, y in [(10, 10), (500, 400), (1099, 849)]:
        np.testing.assert_allclose([mx[y, x], my[y, x]], canonical_to_raw(fit, H, np.array([x / k, y / k])),
                                   atol=1e-2)
    wide_x, wide_y = dense_map(fit, H, (2.0, 1.0))                                # 4400 x 1700, stretched in time
    assert wide_x.shape == (1700, 4400)
    np.testing.assert_allclose([wide_x[800, 2000], wide_y[800, 2000]], [mx[400, 500], my[400, 500]], atol=1e-2)


def test_targets_mark_nodes_and_line_indices():
    k = 0.25
    w, h = G.page_size(k)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    canon = np.stack([xs / k, ys / k], -1)
    canon[:, :5] = np.nan                                                           # off the page
    t = lattice_targets(canon, k, 1.5)
    node = to_canonical(np.array([[10, 20]]))[0] * k
    x0, y0 = int(round(node[0])), int(round(node[1]))
    assert t["heatmap"][y0, x0] > 0.8 and t["col"][y0, x0] == 10 and t["row"][y0, x0] == 20
    assert t["heatmap"][y0, x0 + 5] < 0.01                                          # half-way to the next node
    assert (t["col"][:, :5] == IGNORE).all() and t["heatmap"][:, :5].max() == 0
    assert t["col"].max() == N_VLINES - 1 and t["row"].max() == N_HLINES - 1
    assert t["heatmap"][:, -3:].max() < 0.01           # no half peak at the right edge for a column past the last


def _perfect_outputs(canon, k):
    t = lattice_targets(canon, k, 1.5)
    col = np.eye(N_VLINES, dtype=np.float32)[np.clip(t["col"], 0, None)].transpose(2, 0, 1)
    row = np.eye(N_HLINES, dtype=np.float32)[np.clip(t["row"], 0, None)].transpose(2, 0, 1)
    return t["heatmap"], col, row


def test_perfect_outputs_decode_to_the_lattice_and_empty_ones_fall_back():
    k = 0.25
    w, h = G.page_size(k)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    canon = _curl(np.stack([xs / k, ys / k], -1).reshape(-1, 2)).reshape(h, w, 2)   # the page seen curled
    heat, col, row = _perfect_outputs(canon, k)
    ij, xy, _ = lattice_points(heat, col, row, k)
    assert len(ij) > 0.9 * N_VLINES * N_HLINES
    fit, fallback, _ = fit_from_outputs(heat, col, row, k, FitParams())
    assert not fallback and fit.n_points > 2000
    # the fit maps canonical points to where the curled page shows them (the inverse of the curl)
    q = np.random.default_rng(1).uniform([100, 100], [2100, 1600], (500, 2))
    err = np.linalg.norm(_curl(canonical_to_raw(fit, np.eye(3), q)) - q, axis=1) / G.PX_PER_MM
    assert np.median(err) < 0.1

    empty = np.zeros_like(heat)
    fit, fallback, found = fit_from_outputs(empty, col, row, k, FitParams())
    assert fallback and len(found) == 0
    np.testing.assert_allclose(fit.nodes, identity_fit().nodes)
    H = np.diag([0.5, 0.5, 1.0])
    np.testing.assert_allclose(canonical_to_raw(fit, H, q), q * 2, atol=1e-6)       # = the homography alone


def test_few_points_or_poor_coverage_fall_back():
    ij = node_grid().reshape(-1, 2)
    xy = to_canonical(ij)
    p = FitParams()
    assert fit_lattice(ij[:50], xy[:50], p)[1]                                      # too few
    top = ij[:, 1] < 5                                                              # many, all in 5 rows
    assert fit_lattice(ij[top], xy[top], p)[1]
    assert not fit_lattice(ij, xy, p)[1]


@pytest.mark.parametrize("image_type", ["0005", "0015"])
def test_one_warp_rectification_puts_trace_points_where_the_geometry_says(image_type):
    """A synthetic photo (perspective, lens) and a wrinkled scan: lattice points from the label with 0.1 mm of
    noise, a stage-0 homography from the lead-name keypoints; after the one warp, the labelled trace points lie
    within 0.3 mm (p95) of their canonical positions, closer than the homography alone puts them, and on ink in
    the rectified image."""
    rng = np.random.default_rng(3)
    frame = signals.to_competition_frame(signals.simulate(500, rng), 500)
    img, label = render_image(frame, 500, image_type, rng, "1")
    H = label.homography("keypoints")
    xy = cv2.perspectiveTransform(label.lattice.reshape(-1, 1, 2), H).reshape(-1, 2)   # on the stage-0 page
    xy += rng.normal(0, 0.1 * G.PX_PER_MM, xy.shape)
    fit, fallback = fit_lattice(label.lattice_ij, xy, FitParams())
    assert not fallback
    trace = np.concatenate(list(trace_points(frame, 500).values()))[::7]
    trace = trace[(trace[:, 1] > 0) & (trace[:, 1] < G.PAGE_H)]
    jac = np.linalg.inv(np.stack([(label.canon_to_image(trace + d) - label.canon_to_image(trace)) / 2
                                  for d in ((2, 0), (0, 2))], -1))
    err = image_errors(fit, H, 1.0, trace, label.canon_to_image(trace), jac)
    homography_only = image_errors(identity_fit(), H, 1.0, trace, label.canon_to_image(trace), jac)
    p95, p95_h = np.percentile(err, 95), np.percentile(homography_only, 95)
    assert p95 < min(0.3, 0.6 * p95_h), (p95, p95_h)

    k = 0.5
    page = rectify_image(img, H, fit, fallback, k).page
    grey = page if page.ndim == 2 else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    grey = cv2.erode(grey, np.ones((3, 3), np.uint8))                               # ink within a pixel
    x, y = np.round(trace * k).astype(int).T
    assert np.mean(grey[y, x] < 128) > 0.95


def test_stage1_smoke_trains_validates_per_type_and_loads_without_hydra(smoke_runs, make_cfg, tmp_path):
    import torch

    from engine.evaluate import evaluate
    from pagekit.registry import load_model
    from stage1_rectify import task

    res = smoke_runs["metrics1"]
    assert np.isfinite(res["val/rect_median_mm"]) and np.isfinite(res["val/rect_p95_mm"])
    assert {f"val/{t}/rect_p95_mm" for t in ("0001", "0003", "0015")} <= set(res)
    model, cfg = load_model(smoke_runs[1])
    out = model({"image": torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "coords": torch.zeros(1, 2, 64, 64)})
    assert out["heatmap"].shape == (1, 64, 64) and out["col"].shape == (1, N_VLINES, 64, 64)
    assert cfg["stage"]["id"] == 1 and cfg["model"]["method"] == "tps"

    train_ds, val_ds = task.build_datasets(make_cfg(["stage=1", "experiment=smoke"], tmp_path, smoke_runs["data"]),
                                           with_train=False)
    assert len(train_ds) == 0 and len(val_ds) > 0                                  # evaluation caches no training image
    again = evaluate(model, cfg, "cpu")
    assert again["val/rect_median_mm"] == pytest.approx(res["val/rect_median_mm"])
    assert again["val/fallback_rate"] == pytest.approx(res["val/fallback_rate"])


class _OracleNet:
    """Stands in for LatticeNet on an undistorted page: perfect outputs computed from the coordinate channels."""

    def parameters(self):
        import torch
        yield torch.zeros(1)

    def eval(self):
        return self

    def __call__(self, batch):
        import torch
        coords = batch["coords"].numpy()
        canon = np.stack([coords[:, 0] * G.PAGE_W, coords[:, 1] * G.PAGE_H], -1)
        k = 550 / G.PAGE_W
        outs = [_perfect_outputs(c, k) for c in canon]
        def logit(a):
            return torch.from_numpy(np.log(np.clip(a, 1e-6, 1 - 1e-6) / (1 - np.clip(a, 1e-6, 1 - 1e-6))))

        return {"heatmap": logit(np.stack([o[0] for o in outs])),
                "col": torch.from_numpy(np.stack([o[1] for o in outs])),
                "row": torch.from_numpy(np.stack([o[2] for o in outs]))}


def test_predict_rectifies_raw_images_once_and_flags_missing_homographies():
    from data.synth.render import render_page
    from stage1_rectify.predict import predict

    frame = signals.to_competition_frame(signals.simulate(500, np.random.default_rng(0)), 500)
    page = render_page(frame, 500)                                 # the canonical page itself, 2200 x 1700
    raw = cv2.resize(page, (1650, 1275), interpolation=cv2.INTER_AREA)     # seen at scale 0.75
    H = np.diag([1 / 0.75, 1 / 0.75, 1.0])
    cfg = {"input_size": 550, "cache_size": 1100}
    good, missing, grey = predict(_OracleNet(), cfg, [raw, raw, raw[..., 1]], [H, None, H], k=0.5, batch_size=2)
    assert not good.fallback and good.fit.n_points > 2000 and missing.fallback
    assert not grey.fallback and grey.page.shape == (850, 1100)                    # B/W scans are 2-D
    assert good.page.shape == (850, 1100, 3) and good.map_x.shape == (850, 1100)
    np.testing.assert_allclose(good.map_x[400, 600], 600 / 0.5 * 0.75, atol=0.2)   # canonical -> raw px
    expected = cv2.resize(page, (1100, 850), interpolation=cv2.INTER_AREA)
    assert np.abs(good.page[20:-20, 20:-20].astype(int) - expected[20:-20, 20:-20]).mean() < 12
    assert good.points.shape[1] == 2 and np.all(good.points.max(0) < [1660, 1285])   # detections in raw px


@pytest.mark.parametrize("index_from, expect_ok", [("vote", True), ("classes", True), ("position", False)])
def test_line_indices_survive_a_stage0_error_beyond_half_a_node(index_from, expect_ok):
    """Stage 0 off by 1.3 nodes (6.5 mm) right and 1.2 up: the nearest node is the wrong one; the class logits
    (perfect here) put every point on its own node, directly or through the global vote."""
    k = 0.25
    w, h = G.page_size(k)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    shift = np.array([1.3, -1.2]) * SPACING
    canon = np.stack([xs / k, ys / k], -1) + shift                                  # what each page pixel shows
    canon[(canon[..., 0] < 0) | (canon[..., 0] > G.PAGE_W) | (canon[..., 1] < 0) | (canon[..., 1] > G.PAGE_H)] = np.nan
    heat, col, row = _perfect_outputs(canon, k)
    fit, fallback, _ = fit_from_outputs(heat, col, row, k, FitParams(index_from=index_from))
    q = np.random.default_rng(2).uniform([400, 300], [1800, 1400], (300, 2))
    err_mm = np.linalg.norm(canonical_to_raw(fit, np.eye(3), q) - (q - shift), axis=1) / G.PX_PER_MM
    assert not fallback and (np.median(err_mm) < 0.2) == expect_ok


def test_vote_keeps_the_nearest_node_when_the_classes_know_nothing():
    k = 0.25
    w, h = G.page_size(k)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    heat, col, row = _perfect_outputs(np.stack([xs / k, ys / k], -1), k)
    ij_vote, _, _ = lattice_points(heat, np.zeros_like(col), np.zeros_like(row), k, index_from="vote")
    ij_pos, _, _ = lattice_points(heat, None, None, k, index_from="position")
    np.testing.assert_array_equal(ij_vote, ij_pos)


@pytest.mark.parametrize("unwrap", [True, False])
def test_indices_shifted_in_part_of_the_page_are_repaired(unwrap):
    """Stage 0 right on the left of the page and 1.4 nodes (7 mm) off on the right: nearest-node indices are
    wrong on the right 40 %; unwrapping the indices over neighbours, anchored by the majority, puts them back."""
    k = 0.25
    w, h = G.page_size(k)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    page = np.stack([xs / k, ys / k], -1)
    drift = lambda p: np.stack([1.4 * SPACING * (p[..., 0] / G.PAGE_W) ** 2, np.zeros(p.shape[:-1])], -1)  # noqa
    canon = page + drift(page)                                                     # what each page pixel shows
    canon[canon[..., 0] > G.PAGE_W] = np.nan
    heat, col, row = _perfect_outputs(canon, k)
    fit, fallback, _ = fit_from_outputs(heat, None, None, k, FitParams(index_from="position", unwrap=unwrap))
    q = np.random.default_rng(3).uniform([100, 100], [1900, 1600], (400, 2))
    shown = canonical_to_raw(fit, np.eye(3), q)                                     # stage-0 px said to show q
    err_mm = np.linalg.norm(shown + drift(shown) - q, axis=1) / G.PX_PER_MM
    assert not fallback and (np.percentile(err_mm, 95) < 0.2) == unwrap
