"""Checkpoints: weights + the resolved config as a plain dict (+ optimizer, schedule, scaler, EMA and RNG states
for exact resume), written atomically so a killed run never leaves a half-written file."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from data.files import atomic_path


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: dict, path: str | Path) -> Path:
    with atomic_path(path) as tmp:     # readers see the old file or the new one
        torch.save(obj, tmp)
    return Path(path)


def restore_best(ckpt: dict, resume_path: str | Path, best_path: Path, monitor: str) -> Path | None:
    """On resume, make ``best_path`` hold the best checkpoint so far: the resumed one when its own epoch was the
    best (a run killed between writing last.pt and best.pt has no best.pt of it), else the resumed run's best.pt
    when the run continues in another folder.  Returns what it wrote, or None."""
    best_epoch = ckpt.get("best_epoch")
    if best_epoch is None and ckpt.get("best") is not None:     # checkpoints written before best_epoch existed
        best_epoch = ckpt["epoch"] if ckpt["metrics"].get(f"val/{monitor}") == ckpt["best"] else None
    if best_epoch == ckpt["epoch"]:
        if not best_path.is_file() or load(best_path)["epoch"] != ckpt["epoch"]:
            return save_atomic(ckpt, best_path)
        return None
    previous = Path(resume_path).parent / "best.pt"
    if not best_path.is_file() and previous.is_file() and previous.resolve() != best_path.resolve():
        with atomic_path(best_path) as tmp:
            shutil.copyfile(previous, tmp)
        return best_path
    return None


def load(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (resume=... or checkpoints=[...] must name a .pt file)")
    return torch.load(path, map_location=map_location, weights_only=False)


def init_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load the weights of a training checkpoint (its EMA when kept) or of an exported fp16 file into ``model``,
    in the model's own dtype; a file of another architecture is an error naming the keys that differ."""
    ckpt = load(path)
    state = ckpt.get("ema") or ckpt["model"]
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        raise ValueError(f"init_from={path}: its weights do not fit this model (missing {missing[:3]}, unexpected "
                         f"{extra[:3]}, other shapes {wrong[:3]}); train with the config it was saved with "
                         f"(model.* as in its .yaml)")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
