"""Training framework: config composition, stage=N parsing, smoke training, exact resume, a two-job sweep."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from train import map_stage_args

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def test_stage_numbers_map_to_stage_files():
    assert map_stage_args(["stage=2", "model.encoder=x"]) == ["stage=stage2", "model.encoder=x"]
    assert map_stage_args(["stage=0,1"]) == ["stage=stage0,stage1"]
    assert map_stage_args(["stage=stage1"]) == ["stage=stage1"]


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_every_stage_composes_alone_and_with_smoke(stage, make_cfg):
    for extra in ([], ["experiment=smoke"]):
        cfg = make_cfg([f"stage={stage}"] + extra)
        assert cfg.stage.id == stage and cfg.trainer.epochs > 0 and cfg.optimizer.lr > 0


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.startswith("stage")])
def test_stage_experiments_compose_and_select_their_stage(experiment, make_cfg):
    stage = int(experiment[5])
    assert make_cfg([f"experiment={experiment}"]).stage.id == stage          # the overlay picks its stage
    assert make_cfg([f"stage={stage}", f"experiment={experiment}"]).stage.id == stage


def test_gpu_experiment_uses_pretrained_weights_and_smoke_does_not(make_cfg):
    assert make_cfg(["stage=0", "experiment=stage0_gpu"]).model.pretrained is True
    assert make_cfg(["stage=0", "experiment=smoke"]).model.pretrained is False


def test_competition_data_never_synthesizes_into_a_missing_dir(tmp_path, make_cfg):
    from engine.data import ensure_data

    missing = tmp_path / "physionet-ecg-image-digitization"
    cfg = make_cfg(["experiment=stage0_gpu", "data=competition"], tmp_path / "run", missing)
    assert cfg.data.generate           # the experiment still sets it: data=competition must ignore it
    with pytest.raises(FileNotFoundError, match="unzipped competition"):
        ensure_data(cfg)
    assert not missing.exists()


def test_the_slurm_launcher_composes_with_a_sweep_and_rank_variables_come_from_slurm(monkeypatch):
    from hydra import compose, initialize_config_dir
    from hydra.utils import get_class

    from engine import dist

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=map_stage_args(["hydra/launcher=slurm", "stage=2", "experiment=smoke",
                                                          "hydra.launcher.gpus_per_node=4"]),
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert get_class(launcher._target_).__name__ == "SlurmLauncher"              # the plugin is installed
    assert launcher.gpus_per_node == 4 and launcher.timeout_min == 240 and cfg.stage.id == 2
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "")                  # recorded, so that what setup() exports is undone afterwards
        monkeypatch.delenv(key)
    monkeypatch.setattr(dist, "dist", type("D", (), {"is_initialized": staticmethod(lambda: True)}))
    env = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "2",
           "SLURM_LOCALID": "2", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "gpu01"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert dist.setup() == (2, 2, 4) and os.environ["MASTER_ADDR"] == "gpu01"
    monkeypatch.undo()
    assert "WORLD_SIZE" not in os.environ                                   # later tests train unaffected


def test_each_stage_config_names_its_task_and_an_unknown_stage_lists_the_valid_ones(make_cfg):
    from hydra.errors import MissingConfigException

    from engine.stages import get_task

    for s in (0, 1, 2):
        assert get_task(make_cfg([f"stage={s}"]).stage).MONITOR_MODE in ("min", "max")
    with pytest.raises(MissingConfigException, match=r"(?s)options in .stage.:\s+stage0\s+stage1\s+stage2"):
        make_cfg(["stage=3"])
    with pytest.raises(ValueError, match="names no task module"):
        get_task({"id": 0})


def test_smoke_trains_checkpoint_loads_without_hydra_and_resume_is_exact(tmp_path, smoke_runs, make_cfg,
                                                                          monkeypatch, capsys):
    import engine.loop
    from engine.checkpoint import load
    from engine.loop import train
    from pagekit.registry import load_model

    smoke_data = smoke_runs["data"]
    straight = Path(smoke_runs[0])                                   # the uninterrupted run
    assert straight.is_file() and (straight.parent / "best.pt").is_file()
    ckpt = load(straight)
    assert isinstance(ckpt["config"], dict) and ckpt["epoch"] == 1 and ckpt["step"] == 4

    model, config = load_model(straight)  # no Hydra involved
    out = model({"image": torch.zeros(1, 3, 64, 64, dtype=torch.uint8)})
    assert out["heatmap"].shape == (1, 17, 64, 64) and out["orientation"].shape == (1, 4)

    # emulate a killed run: the same 2-epoch schedule, stopped after its first epoch, then resumed
    cfg_b = make_cfg(["stage=0", "experiment=smoke", "trainer.stop_after_epochs=1"], tmp_path / "b", smoke_data)
    train(cfg_b)
    assert load(tmp_path / "b" / "last.pt")["epoch"] == 0
    cfg_c = make_cfg(["stage=0", "experiment=smoke", f"resume={tmp_path / 'b' / 'last.pt'}"], tmp_path / "b",
                     smoke_data)
    epochs_run = []
    one_epoch = engine.loop.train_one_epoch
    monkeypatch.setattr(engine.loop, "train_one_epoch",
                        lambda *a, **kw: epochs_run.append(a[-1]["epoch"]) or one_epoch(*a, **kw))
    capsys.readouterr()
    train(cfg_c)
    assert epochs_run == [1]                    # it went on from the checkpoint: a fresh start would run [0, 1]
    assert f"[stage 0] checkpoints in {tmp_path / 'b'}: last.pt, best.pt (epoch " in capsys.readouterr().out
    resumed = load(tmp_path / "b" / "last.pt")
    assert resumed["step"] == ckpt["step"] and resumed["epoch"] == 1
    for k, v in ckpt["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


@pytest.mark.slow
def test_smoke_sweep_runs_two_jobs(tmp_path, smoke_data):
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "train.py", "-m", "stage=0", "experiment=smoke", "optimizer.lr=1e-3,5e-4",
           f"data.dir={smoke_data}", f"hydra.sweep.dir={tmp_path}"]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = sorted(p.parent.name for p in tmp_path.glob("*/last.pt"))
    assert jobs == ["0_optimizer.lr=0.001", "1_optimizer.lr=0.0005"]   # one readable folder per job


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path, smoke_data):
    """DDP (gloo on CPU) through torchrun with the same command: one checkpoint, written by rank 0."""
    env = {**os.environ, "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "train.py", "stage=0", "experiment=smoke",
           f"data.dir={smoke_data}", f"hydra.run.dir={tmp_path}"]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    from engine.checkpoint import load

    ckpt = load(tmp_path / "last.pt")
    # each rank sees half the images, so half the single-process steps (4) per run
    assert ckpt["epoch"] == 1 and ckpt["step"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])


def test_init_from_starts_from_exported_weights_with_a_new_schedule(tmp_path, smoke_runs, make_cfg):
    from engine.checkpoint import init_weights, load
    from engine.loop import train
    from pagekit.registry import create_model
    from pagekit.weights import export

    source = tmp_path / "w" / "stage0.pt"
    export(smoke_runs[0], source)                                         # fp16 slim weights
    cfg = make_cfg(["stage=0", "experiment=smoke", f"init_from={source}", "optimizer.lr=1e-12",
                    "optimizer.weight_decay=0"], tmp_path / "ft", smoke_runs["data"])
    train(cfg)
    tuned, start = load(tmp_path / "ft" / "last.pt"), load(source)["model"]
    assert tuned["step"] == 4 and tuned["epoch"] == 1                    # a schedule of its own, from step 0
    params = {k for k, _ in create_model(cfg.model).named_parameters()}
    for k in params:                                     # lr ~ 0: the weights are the exported ones (fp16 apart)
        assert torch.allclose(tuned["model"][k], start[k].float(), atol=1e-3), k
    assert any(not torch.allclose(v.float(), torch.zeros_like(v.float())) for v in start.values())
    other = create_model({**cfg.model, "decoder_channels": [16, 8, 8]})
    with pytest.raises(ValueError, match=r"init_from=.*do not fit this model"):
        init_weights(other, source)


def test_extra_train_dirs_are_generated_with_the_next_seed_and_only_train(tmp_path, smoke_data, make_cfg):
    from data.competition import Competition
    from engine.data import image_jobs, split_images

    extra = tmp_path / "extra"
    base = ["stage=2", "experiment=smoke", "data.generate.n_records=2", "data.generate.types=[0001]"]
    train0, val0 = split_images(make_cfg(base, tmp_path / "run", smoke_data))
    train1, val1 = split_images(make_cfg(base + [f"data.extra_train_dirs=[{extra}]"], tmp_path / "run", smoke_data))
    ids = set(Competition(extra).images()["id"])
    assert len(ids) == 2 and not ids & set(Competition(smoke_data).images()["id"])      # seed 1: other records
    assert val1 == val0 and train1[:len(train0)] == train0 and len(train1) == len(train0) + 2
    jobs = image_jobs(smoke_data, train1)
    assert [csv.parent for _, csv, _ in jobs[-2:]] == [p.parent for p in train1[-2:]]     # each its own record


def test_stage2_trains_in_bf16_channels_last_on_a_cpu_and_its_card_names_the_extra_pages(tmp_path, smoke_data,
                                                                                         make_cfg):
    from engine.checkpoint import load
    from engine.loop import train

    sys.path.insert(0, str(ROOT / "scripts"))
    from export_weights import main as export_main

    extra = tmp_path / "extra"
    cfg = make_cfg(["stage=2", "experiment=smoke", "trainer.precision=bf16", "trainer.channels_last=true",
                    "trainer.epochs=1", "data.generate.n_records=2", "data.generate.types=[0001]",
                    f"data.extra_train_dirs=[{extra}]"], tmp_path / "run", smoke_data)
    res = train(cfg)
    ckpt = load(res["checkpoint"])
    assert ckpt["step"] == 2 and np.isfinite(res["val/loss"])
    assert all(v.dtype == torch.float32 for v in ckpt["model"].values() if v.is_floating_point())  # fp32 masters
    [pt] = export_main([str(res["checkpoint"]), f"out={tmp_path / 'w'}"])
    assert f"every page of `{extra}` (the same settings, seed 1:" in pt.with_suffix(".md").read_text()
