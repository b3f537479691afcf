import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# What experiment=smoke generates (conf/experiment/smoke.yaml), plus a 2-image test split for the inference tests.
SMOKE_SET = {"n_records": 4, "seed": 0, "types": ["0001", "0003", "0015"], "n_test": 2}


def compose_cfg(overrides, out_dir=None, data_dir=None):
    """The training config that ``python train.py <overrides>`` composes, with out_dir and data.dir set."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from train import map_stage_args

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=map_stage_args(overrides))
    with open_dict(cfg):
        cfg.out_dir = str(out_dir or "unused")
        if data_dir is not None:
            cfg.data.dir = str(data_dir)
    return cfg


def pytest_collection_modifyitems(items):
    """Tests that need the three trained smoke stages are marked ``trains`` (the mutation run leaves them out)."""
    for item in items:
        if "smoke_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains)


@pytest.fixture(scope="session")
def make_cfg():
    return compose_cfg


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    """The one synthetic competition the tests share: 4 records x 3 types, 2 test images, labels."""
    from data.synth.generate import generate

    given = os.environ.get("ECG_SMOKE_DATA")      # made once beforehand (scripts/mutation.sh): read, never written
    if given and (Path(given) / "train.csv").is_file():
        return Path(given)
    return generate(tmp_path_factory.mktemp("smoke") / "data", workers=1, progress=False, **SMOKE_SET)


@pytest.fixture(scope="session")
def smoke_runs(smoke_data, tmp_path_factory):
    """All three stages trained once with experiment=smoke on ``smoke_data``:
    {"data": dir, 0: last.pt, 1: last.pt, 2: last.pt, "metrics<N>": final metrics}."""
    from engine.loop import train

    root = tmp_path_factory.mktemp("smoke_runs")
    out = {"data": smoke_data}
    for stage in (0, 1, 2):
        res = train(compose_cfg([f"stage={stage}", "experiment=smoke"], root / f"stage{stage}", smoke_data))
        out[stage], out[f"metrics{stage}"] = res["checkpoint"], res
    return out
