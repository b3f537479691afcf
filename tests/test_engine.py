"""Engine pieces: schedules, optimizer groups, atomic checkpoints."""
import pytest
import torch
from omegaconf import OmegaConf

from engine.checkpoint import load, save_atomic
from engine.optim import build_optimizer, build_scheduler


def _lrs(name, total=100, warmup=10, final=0.01):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(OmegaConf.create({"name": "adamw", "lr": 1.0, "weight_decay": 0.1}), model)
    sched = build_scheduler(OmegaConf.create({"name": name, "warmup_frac": 0.0, "warmup_steps": warmup,
                                              "final_frac": final}), opt, total)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out, opt


def test_warmup_then_cosine_to_final_fraction():
    lrs, opt = _lrs("cosine")
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)      # linear warm-up to the peak
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))                    # then monotone decay
    assert lrs[55] == pytest.approx(0.01 + 0.99 * 0.5, abs=0.02)              # half-way down the cosine
    assert lrs[-1] == pytest.approx(0.01, abs=0.01)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]       # no decay on biases


def test_onecycle_anneals_linearly_and_unknown_name_fails_early():
    lrs, _ = _lrs("onecycle", warmup=50)
    assert lrs[49] == pytest.approx(1.0) and lrs[75] == pytest.approx(0.01 + 0.99 * 0.5, abs=0.03)
    with pytest.raises(ValueError, match="one of cosine, onecycle, constant"):
        _lrs("linear")


def test_checkpoint_write_is_atomic_and_load_names_missing_file(tmp_path):
    save_atomic({"a": torch.ones(2)}, tmp_path / "x" / "last.pt")
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["last.pt"]     # no temp file left behind
    assert torch.equal(load(tmp_path / "x" / "last.pt")["a"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load(tmp_path / "nothere.pt")


def test_wandb_logger_runs_disabled_and_always_writes_jsonl(tmp_path, monkeypatch):
    import json

    import numpy as np

    from engine.logger import RunLogger

    monkeypatch.setenv("WANDB_MODE", "disabled")
    log = RunLogger({"a": 1}, tmp_path / "run", kind="wandb")
    log.log({"train/loss": 0.5, "lr": 1e-3, "skip": [1, 2]}, step=3)
    log.images("val/preview", [np.zeros((4, 4, 3), np.uint8)], step=3)
    log.finish()
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert rows == [{"step": 3, "train/loss": 0.5, "lr": 1e-3}]


def test_inference_precision_is_bf16_on_a_cpu_only_where_it_is_native(monkeypatch):
    import engine.device as D

    cpu = torch.device("cpu")
    monkeypatch.setattr(D, "cpu_has_bf16", lambda: True)
    assert D.autocast_dtype("auto", cpu) is torch.bfloat16
    assert D.autocast_dtype("fp32", cpu) is None
    monkeypatch.setattr(D, "cpu_has_bf16", lambda: False)
    assert D.autocast_dtype("auto", cpu) is None                      # emulated bf16 is slower than fp32
    assert D.autocast_dtype("bf16", cpu) is torch.bfloat16            # unless asked for
    with pytest.raises(ValueError, match="GPUs"):
        D.autocast_dtype("fp16", cpu)
    with pytest.raises(ValueError, match="precision must be"):
        D.autocast_dtype("half", cpu)
