"""Run logger: always a JSON-lines file beside the checkpoints; wandb when ``logger=wandb``.

wandb's mode comes from WANDB_MODE (default ``disabled``), so tests and CI never touch the network.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from data.files import write_text


def heat_overlay(image, heat: np.ndarray) -> np.ndarray:
    """A (3, H, W) uint8 RGB image tensor with a [0, 1] map raised into its red channel: BGR uint8 for previews."""
    img = image.permute(1, 2, 0).numpy()[..., ::-1].astype(np.float32)
    img[..., 2] = np.maximum(img[..., 2], heat[:img.shape[0], :img.shape[1]] * 255)
    return img.astype(np.uint8)


class RunLogger:
    def __init__(self, cfg_dict: dict, out_dir: Path, kind: str = "none", project: str = "ecg-digitization",
                 name: str | None = None):
        self.path = Path(out_dir) / "log.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.wandb = None
        if kind == "wandb":
            import wandb

            self.wandb = wandb.init(project=project, name=name, config=cfg_dict, dir=str(out_dir),
                                    mode=os.environ.get("WANDB_MODE", "disabled"), reinit="finish_previous")

    def log(self, metrics: dict, step: int) -> None:
        plain = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **plain}) + "\n")
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def restore(self, previous: Path, ckpt: dict) -> None:
        """On resume: the log holds one line per epoch up to the resumed checkpoint's, taken from this run's log
        (or, in a new folder, the resumed run's), with the checkpoint's own line added if the kill came first."""
        source = self.path if self.path.is_file() else Path(previous)
        lines = [json.loads(x) for x in source.read_text().splitlines() if x.strip()] if source.is_file() else []
        lines = [x for x in lines if x.get("epoch", -1) <= ckpt["epoch"]]
        if not any(x.get("epoch") == ckpt["epoch"] for x in lines):
            plain = {k: v for k, v in ckpt["metrics"].items() if isinstance(v, (int, float, str))}
            lines.append({"step": ckpt["step"], **plain, "epoch": ckpt["epoch"]})
        write_text(self.path, "".join(json.dumps(x) + "\n" for x in lines))

    def images(self, key: str, images: list, step: int) -> None:
        if self.wandb is not None and images:
            import wandb

            self.wandb.log({key: [wandb.Image(im[..., ::-1]) for im in images]}, step=step)  # BGR -> RGB

    def finish(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None
