"""Stage 2: targets, strips, the two models (every fusion), losses, and the smoke run with its end-to-end SNR."""
import numpy as np
import pandas as pd
import pytest
import torch

from data import geometry as G
from pagekit.anatomy import best_shift
from pagekit.extract import ExtractConfig, extract_leads
from pagekit.metric import image_ratio, to_db
from stage2_segment import strips
from stage2_segment.dataset import shift_columns
from stage2_segment.losses import segmentation_loss
from stage2_segment.model_series import FUSIONS, SeriesNet
from stage2_segment.model_whole import WholeNet
from stage2_segment.targets import row_columns, trace_masks


def _signals(fs=500, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(G.sig_len(fs)) / fs
    df = pd.DataFrame({lead: 0.8 * np.sin(2 * np.pi * (1.1 + 0.1 * i) * t + rng.uniform(0, 6))
                       + 0.3 * np.sin(2 * np.pi * 7 * t) for i, lead in enumerate(G.LEADS)})
    for lead in G.LEADS:
        if lead != G.RHYTHM_LEAD:
            a, b = G.lead_sample_window(lead, fs)
            df.loc[:a - 1, lead] = np.nan
            df.loc[b:, lead] = np.nan
    return df


def _leads(df):
    return {lead: df[lead].dropna().to_numpy() for lead in G.LEADS}


@pytest.mark.parametrize("sigma", [0.0, 1.0])
def test_masks_keep_the_subpixel_position_of_every_column(sigma):
    ycols = np.array([[10.3, 10.75, np.nan, 12.0]], np.float32)
    m = trace_masks(ycols, 30, sigma)[0]
    y = np.arange(30)[:, None]
    centroid = (m * y).sum(0) / np.maximum(m.sum(0), 1e-9)
    assert np.allclose(centroid[[0, 1, 3]], ycols[0, [0, 1, 3]], atol=0.01)
    assert m[:, 2].sum() == 0                                       # no trace, no target
    if sigma == 0:
        assert (m > 0).sum(0).max() <= 2                            # sparse: at most 2 px per column


@pytest.mark.parametrize("k", [(1.0, 0.5), (2.0, 1.0)])
def test_targets_decode_back_to_the_signal_through_the_extractor(k):
    """Target -> extraction -> metric: the targets are where the extractor reads the signal (> 30 dB uncapped)."""
    df = _signals()
    ycols = row_columns(df, 500, k)
    w, h = G.page_size(k)
    probs = trace_masks(ycols, h)
    pred = extract_leads(probs, {ld: len(v) for ld, v in _leads(df).items()}, 500, k,
                         ExtractConfig(subpixel="soft", soft_radius=1))
    truth = _leads(df)
    sig = sum(float(np.sum((v - v.mean()) ** 2)) for v in truth.values())
    noise = sum(float(np.sum(((truth[ld] - truth[ld].mean()) - (pred[ld] - pred[ld].mean())) ** 2)) for ld in G.LEADS)
    assert 10 * np.log10(sig / noise) > 30
    assert to_db(image_ratio(truth, pred, 500)) > 25.8               # capped metric at its maximum


@pytest.mark.parametrize("k", [(1.0, 0.5), (2.0, 1.0)])
def test_each_column_is_read_at_the_time_whose_ink_it_shows(k, monkeypatch):
    """The targets mark a trace where its ink lies (``G.INK_DX`` left of the sample's nominal x) and the extraction
    reads each column as that later time: no lead comes out early.  Targets at the nominal x instead (the ink
    where our renderer drew it before) read half a pixel late."""
    df = _signals()
    truth = _leads(df)
    w, h = G.page_size(k)
    cfg = ExtractConfig(subpixel="soft", soft_radius=1)

    def shifts():
        probs = trace_masks(row_columns(df, 500, k), h)
        pred = extract_leads(probs, {ld: len(v) for ld, v in truth.items()}, 500, k, cfg)
        return np.array([best_shift(truth[ld], pred[ld], 20) for ld in G.LEADS])

    assert abs(np.median(shifts())) < 0.2 and np.abs(shifts()).max() < 0.4
    monkeypatch.setattr(G, "ink_points", G.trace_points)             # targets at the nominal x
    assert np.median(shifts()) < -0.5                                # late (1.27 samples; the parabola says less)


def test_shifted_targets_follow_the_warped_page():
    ycols = np.array([[np.nan, 5.0, 6.0, 7.0, 8.0, np.nan]], np.float32)
    out = shift_columns(ycols, dx=1.0, dy=0.5, sy=1.1, cy=0.0)
    assert np.allclose(out[0, 2:5], 1.1 * ycols[0, 1:4] + 0.5) and np.isnan(out[0, 1])


def test_strips_cut_and_paste_back_in_place():
    bounds = strips.strip_bounds(0.25, 3.0)
    assert all((b - a) % 32 == 0 for a, b in bounds) and len(bounds) == G.N_ROWS
    h = G.page_size(0.25)[1]
    page = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1).expand(1, 1, h, 3)
    s = strips.cut(page, bounds, fill=-1.0)                          # (1, R, 1, hs, 3)
    back, covered = strips.paste(s[:, :, 0], bounds, h, fill=-7.0)
    for r, (a, b) in enumerate(bounds):
        rows = torch.arange(max(a, 0), min(b, h))
        assert torch.equal(back[0, r, rows, 0], rows.float()) and covered[r, rows].all()
    assert (back[0, 0, :max(bounds[0][0], 0)] == -7).all()


def _model_cfg(**kw):
    return {"encoder": "tu-resnet18", "decoder_channels": [16, 8, 8], "page_k": [0.25, 0.25], "strip_mv": 3.0,
            "pos_weight": 20.0, "column_weight": 0.5, "dice_weight": 0.5, "column_loss": "ce", **kw}


def _batch(W=96):
    h = G.page_size(0.25)[1]
    H = -(-h // 32) * 32
    ys, xs = torch.meshgrid(torch.arange(H) / h, torch.arange(W) / 550, indexing="ij")
    ycols = np.tile(np.array(G.BASELINES, np.float32)[:, None] * 0.25, (1, W))
    return {"image": torch.randint(0, 255, (2, 3, H, W), dtype=torch.uint8),
            "coords": torch.stack([xs, ys])[None].expand(2, -1, -1, -1).contiguous(),
            "mask": torch.from_numpy(trace_masks(ycols, H))[None].expand(2, -1, -1, -1).contiguous()}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_series_fusions_run_forward_and_backward(fusion):
    m = _model_cfg(fusion=fusion, grad_checkpointing=fusion == "conv2d")
    model, batch = SeriesNet(m), _batch()
    out = model(batch)
    assert out["logits"].shape == batch["mask"].shape and out["weight"].shape == batch["mask"].shape
    loss, parts = segmentation_loss(out, batch, m)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"bce", "dice", "column"}
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    if fusion != "none":    # zero-initialised last layers still learn
        assert any(f.body[-1].weight.grad.abs().sum() > 0 for f in model.fusion if f.kind != "none")


def test_whole_model_gives_four_full_resolution_channels_in_rgb_and_grey():
    batch = _batch(64)
    for channels in ("rgb", "grey"):
        out = WholeNet(_model_cfg(channels=channels))(batch)
        assert out["logits"].shape == batch["mask"].shape


def test_column_loss_prefers_the_true_row():
    batch = _batch(32)
    m = _model_cfg(column_weight=1.0, dice_weight=0.0)
    good = torch.where(batch["mask"] > 0, 5.0, -5.0)
    bad = torch.roll(good, 4, dims=2)
    for kind in ("ce", "softargmax"):
        m["column_loss"] = kind
        lg, pg = segmentation_loss({"logits": good}, batch, m)
        lb, pb = segmentation_loss({"logits": bad}, batch, m)
        assert pg["column"] < pb["column"] and lg < lb


def test_stage2_smoke_trains_validates_end_to_end_per_type_and_loads_without_hydra(smoke_runs):
    from pagekit.registry import load_model

    res = smoke_runs["metrics2"]
    assert np.isfinite(res["val/snr_db"])
    assert {f"val/{t}/snr_db" for t in ("0001", "0003", "0015")} <= set(res)
    model, cfg = load_model(smoke_runs[2])
    assert cfg["stage"]["id"] == 2 and cfg["model"]["name"] == "whole"
    out = model(_batch(64))
    assert out["logits"].shape[1] == 4

    from omegaconf import OmegaConf

    from stage2_segment import task
    _, val = task.build_datasets(OmegaConf.create(cfg), with_train=False)
    pics = task.preview(model, val, cfg, "cpu", n=1)                  # what logger=wandb shows
    assert pics[0].shape == (*val[0]["image"].shape[1:], 3) and pics[0].dtype == np.uint8


def test_series_smoke_trains(tmp_path, smoke_runs, make_cfg):
    from engine.loop import train

    cfg = make_cfg(["stage=2", "model=series", "experiment=smoke", "model.fusion=conv3d", "trainer.epochs=1"],
                   tmp_path / "run", smoke_runs["data"])
    res = train(cfg)
    assert np.isfinite(res["val/snr_db"]) and np.isfinite(res["train/loss"])


def test_stage2_pages_can_come_from_stages_0_and_1(smoke_runs, tmp_path, make_cfg):
    from stage2_segment import task

    cfg = make_cfg(["stage=2", "experiment=smoke", f"model.rectify_with=[{smoke_runs[0]},{smoke_runs[1]}]",
                    f"data.cache_dir={tmp_path / 'cache'}"], tmp_path / "run", smoke_runs["data"])
    train_ds, val_ds = task.build_datasets(cfg, with_train=False)
    assert len(train_ds) == 0 and len(val_ds) > 0
    item = val_ds[0]
    assert item["image"].shape[1:] == item["mask"].shape[1:] and item["mask"].sum() > 0
    fs, image_type, leads, layout = val_ds.truth(0)
    assert layout.name == G.DEFAULT_LAYOUT
    assert image_type in ("0001", "0003", "0015") and set(leads) == set(G.LEADS)


def test_the_whole_model_learns_one_page_it_sees_again():
    """Learning where it is the point: 30 Adam steps on one batch whose image shows the traces its mask holds
    (dark rows on white) must cut the loss by more than half and put each row's column-wise argmax on its trace."""
    torch.manual_seed(0)
    batch = _batch(64)
    mask = batch["mask"][0]                                          # (rows, H, W)
    ink = (mask.sum(0) > 0).float()
    batch["image"] = (255 * (1 - ink))[None, None].expand(2, 3, -1, -1).to(torch.uint8).contiguous()
    m = _model_cfg()
    model = WholeNet(m)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, _ = segmentation_loss(model(batch), batch, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::5]
    with torch.no_grad():
        rows = model(batch)["logits"][0].argmax(1)                   # (rows, W): the y each row's channel picks
    assert (rows.float() - mask.argmax(1).float()).abs().median() <= 2


def test_each_page_of_a_batch_is_read_on_its_own_rows_and_a_padding_row_is_never_pasted():
    """Training items carry their rows' baselines: per page (a (B, R) tensor) the model must give what it gives with
    those rows for the whole batch, and a NaN baseline (a padding row) must cover no pixel."""
    torch.manual_seed(0)
    model = SeriesNet(_model_cfg(fusion="shared")).eval()
    batch = _batch()
    twelve = G.as_layout("12x1").baselines
    with torch.no_grad():
        shared = model({**batch, "baselines": list(twelve[3:7])})
        per_page = model({**batch, "baselines": torch.tensor([twelve[3:7], twelve[3:7]])})
        mixed = model({**batch, "baselines": torch.tensor([list(G.BASELINES), list(twelve[:3]) + [float("nan")]])})
        default = model(batch)
    assert torch.allclose(shared["logits"], per_page["logits"], atol=1e-5)
    assert torch.equal(shared["weight"], per_page["weight"])
    assert torch.allclose(mixed["logits"][0], default["logits"][0], atol=1e-4)
    assert mixed["weight"][0, 3].any() and not mixed["weight"][1, 3].any()
    for r, (a, b) in enumerate(strips.strip_bounds(0.25, 3.0, list(twelve[:3]))):   # each row: its own band
        rows = torch.nonzero(mixed["weight"][1, r, :, 0])[:, 0]
        assert (int(rows.min()), int(rows.max()) + 1) == (max(a, 0), b)


def test_a_train_item_of_a_taller_layout_shows_four_consecutive_rows_with_their_own_targets(tmp_path):
    """A 12x1 page cached with its layout: a train item holds four consecutive rows, each row's mask on its own
    baseline; a 3x4 page (three rows) is padded with a NaN row and an empty mask; the truth windows follow the
    layout (every lead over the whole record on 12x1)."""
    import cv2

    from engine.cache import save_item
    from stage2_segment.dataset import SegmentDataset, collate

    k = (0.25, 0.25)
    fs = 250
    t = np.arange(G.sig_len(fs)) / fs
    full = pd.DataFrame({lead: 0.05 * np.sin(2 * np.pi * t) for lead in G.LEADS})     # flat enough to stay on its row
    csv = tmp_path / "rec.csv"
    full.to_csv(csv, index=False)
    w, h = G.page_size(k)
    png = cv2.imencode(".png", np.full((h, w, 3), 255, np.uint8))[1]
    items = [save_item(tmp_path / f"{name}.npz", page=png, ycols=row_columns(full, fs, k, name), type="0001", fs=fs,
                       csv=str(csv), layout=name) for name in ("12x1", "3x4")]
    train = SegmentDataset(items, k, train=True, shift_px=0.0, stretch=0.0, strength=0.0)
    seen = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        item = train[0]
        bl, twelve = item["baselines"].numpy(), np.array(G.as_layout("12x1").baselines)
        first = int(np.argmin(np.abs(twelve - bl[0])))
        assert np.allclose(bl, twelve[first:first + 4], atol=0.01)
        seen.add(first)
        ys = (item["mask"].numpy() * np.arange(item["mask"].shape[1])[None, :, None]).sum(1) / \
            np.maximum(item["mask"].numpy().sum(1), 1e-9)
        on = item["mask"].numpy().sum(1) > 0.5
        for r in range(4):
            assert abs(np.median(ys[r][on[r]]) - bl[r] * k[1]) < 2
    assert len(seen) > 1                           # the window moves over the page
    item = train[1]
    assert np.isnan(item["baselines"][3]) and item["mask"][3].sum() == 0 and item["mask"][:3].sum() > 0
    val = SegmentDataset(items, k, train=False)
    batch = collate([val[0], val[1]])
    assert batch["baselines"].shape == (2, 12) and batch["mask"].shape[:2] == (2, 12)
    assert torch.isnan(batch["baselines"][1, 3:]).all() and batch["mask"][1, 3:].sum() == 0
    _, _, leads, layout = val.truth(0)
    assert layout.name == "12x1" and all(len(v) == G.sig_len(fs) for v in leads.values())
    _, _, leads, layout = val.truth(1)
    assert layout.name == "3x4" and len(leads["II"]) == G.sig_len(fs) // 4
