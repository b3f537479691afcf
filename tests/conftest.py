import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """All three stages trained with experiment=smoke on one tiny synthetic competition (with a 2-image test
    split): {"data": dir, 0: last.pt, 1: last.pt, 2: last.pt}."""
    from engine.loop import train
    from test_train import make_cfg

    root = tmp_path_factory.mktemp("smoke_runs")
    out = {"data": root / "data"}
    for stage in (0, 1, 2):
        cfg = make_cfg([f"stage={stage}", "experiment=smoke", "data.generate.n_test=2"], root / f"stage{stage}",
                       out["data"])
        res = train(cfg)
        out[stage], out[f"metrics{stage}"] = res["checkpoint"], res
    return out
