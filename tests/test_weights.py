"""Where checkpoints come from (weights/, files, folders, Hub ids offline) and the fp16 files that ship."""
from pathlib import Path

import pytest
import torch

import pagekit.weights as W
from pagekit.registry import load_model


def test_no_checkpoints_means_weights_dir_and_an_empty_one_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(W.WeightsNotFound, match="holds no weights.*checkpoints=.*hf://.*method=classical"):
        W.resolve_checkpoints([])
    for name in ("stage2.pt", "stage0.pt"):
        (tmp_path / name).write_bytes(b"")
    assert W.resolve_checkpoints(None) == [str(tmp_path / "stage0.pt"), str(tmp_path / "stage2.pt")]
    assert W.resolve_checkpoints([str(tmp_path)]) == W.resolve_checkpoints([])           # a folder: its .pt files
    with pytest.raises(W.WeightsNotFound, match="missing.pt not found"):
        W.resolve_checkpoints([str(tmp_path / "missing.pt")])


def test_hub_ids_resolve_from_the_offline_cache_and_an_uncached_one_is_named(tmp_path, monkeypatch):
    import huggingface_hub.constants as C

    monkeypatch.setattr(C, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(C, "HF_HUB_CACHE", str(tmp_path))
    commit = "a" * 40                                   # the Hub cache's layout: refs/main -> snapshots/<commit>/
    repo = tmp_path / "models--ecg--digitizer"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "stage2.pt").write_bytes(b"weights")
    assert W.resolve_checkpoints(["hf://ecg/digitizer/stage2.pt"]) == [str(snap / "stage2.pt")]
    with pytest.raises(W.WeightsNotFound, match="hf://ecg/other.*not in the Hugging Face cache.*HF_HUB_OFFLINE"):
        W.resolve_checkpoints(["hf://ecg/other/stage2.pt"])
    with pytest.raises(W.WeightsNotFound, match="hf://owner/repo"):
        W.resolve_checkpoints(["hf://justaname"])


def test_export_halves_the_file_and_the_model_answers_as_before(smoke_runs, tmp_path):
    src = Path(smoke_runs[0])
    out = tmp_path / "stage0.pt"
    W.export(src, out)
    assert out.stat().st_size < src.stat().st_size / 4         # no optimizer state (2 of 3 copies), half the bytes
    slim = torch.load(out, weights_only=False)
    assert set(slim) >= {"model", "config", "model_module", "metrics"} and "optimizer" not in slim
    assert all(v.dtype == torch.float16 for v in slim["model"].values() if v.is_floating_point())
    full, cfg = load_model(src)
    half, cfg_half = load_model(out)
    assert cfg_half == cfg
    torch.manual_seed(0)
    size = cfg["model"]["input_size"]
    image = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        a, b = full({"image": image}), half({"image": image})
    assert torch.allclose(torch.sigmoid(a["heatmap"]), torch.sigmoid(b["heatmap"]), atol=2e-3)
    assert torch.allclose(torch.softmax(a["orientation"], 1), torch.softmax(b["orientation"], 1), atol=2e-3)


def test_export_script_writes_card_and_config_with_a_decoding_change(smoke_runs, tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from export_weights import main

    [pt] = main([str(smoke_runs[1]), f"out={tmp_path}", "stage1.model.smoothing=250", "stage0.model.sigma=9"])
    _, cfg = load_model(pt)
    assert pt.name == "stage1.pt" and cfg["model"]["smoothing"] == 250          # a number, as YAML reads it
    assert "smoothing: 250" in pt.with_suffix(".yaml").read_text()
    card = pt.with_suffix(".md").read_text()
    assert "`model.smoothing=250`" in card and "sigma" not in card.split("Changed at export")[1].split("\n")[0]
    with pytest.raises(SystemExit):                                             # a key the config lacks is named
        main([str(smoke_runs[1]), f"out={tmp_path / 'b'}", "stage1.model.smothing=1"])


SHIPPED = Path(__file__).resolve().parents[1] / "weights"


@pytest.mark.skipif(not list(SHIPPED.glob("*.pt")), reason="no weights ship in this checkout")
def test_the_shipped_weights_are_small_fp16_carded_and_digitize_a_page(smoke_data):
    """What ships in weights/: one file per stage, fp16, config and card beside, <= 50 MB in all, and together
    they read a synthetic page well above 0 mV (a wrong file, a broken export or a lost decoding setting fails)."""
    import pandas as pd

    from data.competition import Competition
    from inference.pipeline import Digitizer
    from pagekit.metric import image_ratio, to_db

    files = sorted(SHIPPED.glob("*.pt"))
    assert [f.name for f in files] == ["stage0.pt", "stage1.pt", "stage2.pt"]
    assert sum(f.stat().st_size for f in files) <= 50e6
    for f in files:
        assert f.with_suffix(".yaml").is_file() and "python train.py" in f.with_suffix(".md").read_text()
        model, cfg = load_model(f)
        assert cfg["stage"]["id"] == int(f.stem[-1])
        state = torch.load(f, map_location="cpu", weights_only=True)["model"]      # plain tensors and types only
        assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    comp = Competition(smoke_data)
    image = comp.images(["0001"]).iloc[0]
    leads = {lead: v for lead, (_, v) in comp.load_leads(image.id).items()}
    reading = Digitizer([], device="cpu").run([Path(image.path)], [int(image.fs)],
                                              [{k: len(v) for k, v in leads.items()}])[0]
    assert not any(reading.flags.values())
    assert to_db(image_ratio(leads, reading.leads, int(image.fs))) > 10.0, pd.Series(reading.flags)
