"""The training loop shared by every stage: ``train(cfg)`` is pure (no Hydra), ``train.py`` only wraps it.

AMP (bf16/fp16) on GPU, gradient accumulation and clipping, warm-up + cosine/one-cycle schedules, optional EMA,
per-epoch validation with the stage's own metric, atomic best/last checkpoints (weights + plain-dict config +
optimizer/schedule/scaler/EMA/RNG state), exact resume, seeds, tqdm, and DDP under torchrun.
"""
from __future__ import annotations

import contextlib
import gc
import math
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from data.files import remove_stale_temps
from engine import checkpoint, dist
from engine.config import check_config
from engine.device import autocast_dtype, resolve_device, to_device
from engine.logger import RunLogger
from engine.optim import build_optimizer, build_scheduler
from engine.stages import get_task


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_one_epoch(model, loader, task, cfg, optimizer, scheduler, scaler, ema, device, dtype, state) -> dict:
    model.train()
    tcfg = cfg.trainer
    accum = max(1, int(tcfg.grad_accum))
    limit = tcfg.get("max_steps_per_epoch")
    n_batches = len(loader) if not limit else min(len(loader), int(limit) * accum)
    totals: dict[str, float] = {}
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(total=n_batches, desc=f"epoch {state['epoch']}", disable=not dist.is_main() or not tcfg.progress,
               leave=False, dynamic_ncols=True)
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        batch = to_device(batch, device, tcfg.channels_last)
        sync = (i + 1) % accum == 0 or i + 1 == n_batches
        ctx = model.no_sync() if (hasattr(model, "no_sync") and not sync) else contextlib.nullcontext()
        with ctx:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = model(batch)
                loss, parts = task.loss(batch, out, cfg)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {state['epoch']}, batch {i}; "
                                         "lower optimizer.lr or use trainer.precision=fp32")
            scaler.scale(loss / accum).backward()
        if sync:
            if tcfg.clip_grad:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            state["step"] += 1
            if ema is not None:
                ema.update(dist.unwrap(model), step=state["step"])
        for k, v in {"loss": loss.detach(), **parts}.items():
            totals[k] = totals.get(k, 0.0) + float(v)
        bar.update(1)
        bar.set_postfix(loss=f"{totals['loss'] / (i + 1):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    bar.close()
    n = max(1, n_batches)
    return {f"train/{k}": v / n for k, v in totals.items()} | {"lr": scheduler.get_last_lr()[0]}


@torch.no_grad()
def validate(model, loader, task, cfg, device) -> dict:
    model.eval()
    return {f"val/{k}": v for k, v in task.validate(model, loader, cfg, device).items()}


def _loader(ds, cfg, shuffle: bool, rank: int, world: int, seed: int) -> DataLoader:
    # One sampler for every case: with one replica it is a seeded shuffle whose order depends only on
    # (seed, epoch), which is what makes resume exact.
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=shuffle)
    nw = int(cfg.data.num_workers)
    return DataLoader(ds, batch_size=int(cfg.trainer.batch_size), sampler=sampler, num_workers=nw,
                      pin_memory=torch.cuda.is_available(), drop_last=shuffle and len(ds) >= cfg.trainer.batch_size,
                      persistent_workers=False, collate_fn=getattr(ds, "collate", None))


def train(cfg: DictConfig) -> dict:
    """Train one stage as configured; returns the final validation metrics (and ``best``, ``checkpoint``)."""
    check_config(cfg)
    rank, local_rank, world = dist.setup()
    seed_everything(int(cfg.seed) + rank)
    device = resolve_device(cfg.trainer.device, local_rank)
    # 'auto' trains in fp32 on a CPU: bf16 there is an explicit choice (trainer.precision=bf16), unmeasured on
    # stages 0 and 1, whose keypoints are sub-pixel
    precision = cfg.trainer.precision if device.type == "cuda" or cfg.trainer.precision != "auto" else "fp32"
    dtype = autocast_dtype(precision, device)
    task = get_task(cfg.stage)
    out_dir = Path(cfg.out_dir)
    cfg_dict = OmegaConf.to_container(cfg, resolve=True)
    monitor, mode = cfg.stage.monitor, task.MONITOR_MODE
    if dist.is_main() and out_dir.is_dir():
        for p in remove_stale_temps(out_dir):
            warnings.warn(f"removed {p}, left by a run killed while writing it", stacklevel=2)
    logger = RunLogger(cfg_dict, out_dir, cfg.logger.kind, cfg.logger.get("project", "ecg-digitization"),
                       cfg.logger.get("name")) if dist.is_main() else None   # rank 0 alone logs
    model = ema = optimizer = None
    try:
        train_ds, val_ds = task.build_datasets(cfg)
        model = task.build_model(cfg).to(device)
        if cfg.trainer.channels_last:
            model = model.to(memory_format=torch.channels_last)
        train_loader = _loader(train_ds, cfg, True, rank, world, int(cfg.seed))
        val_loader = _loader(val_ds, cfg, False, 0, 1, int(cfg.seed))  # every rank validates all; rank 0 reports
        epochs = int(cfg.trainer.epochs)
        limit = cfg.trainer.get("max_steps_per_epoch")
        steps_per_epoch = math.ceil(len(train_loader) / max(1, int(cfg.trainer.grad_accum)))
        if limit:
            steps_per_epoch = min(steps_per_epoch, int(limit))
        optimizer = build_optimizer(cfg.optimizer, model)
        scheduler = build_scheduler(cfg.scheduler, optimizer, max(1, steps_per_epoch * epochs))
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        if cfg.trainer.ema:
            from timm.utils import ModelEmaV3
            ema = ModelEmaV3(model, decay=float(cfg.trainer.ema))
        state = {"epoch": 0, "step": 0, "best": None, "best_epoch": None}
        if cfg.get("resume"):
            ckpt = checkpoint.load(cfg.resume, map_location=device)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            if ema is not None and ckpt.get("ema") is not None:
                ema.module.load_state_dict(ckpt["ema"])
            checkpoint.set_rng_state(ckpt["rng"])
            state = {"epoch": ckpt["epoch"] + 1, "step": ckpt["step"], "best": ckpt["best"],
                     "best_epoch": ckpt.get("best_epoch")}
            if dist.is_main():        # what a run killed between last.pt and best.pt / the log did not write
                checkpoint.restore_best(ckpt, cfg.resume, out_dir / "best.pt", monitor)
                logger.restore(Path(cfg.resume).parent / "log.jsonl", ckpt)
        elif cfg.get("init_from"):          # a resumed run already holds the fine-tuned weights
            checkpoint.init_weights(model, cfg.init_from)
        if cfg.trainer.compile:
            model = torch.compile(model)
        if world > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[local_rank] if device.type == "cuda" else None)
        metrics: dict = {}
        stop = epochs if not cfg.trainer.get("stop_after_epochs") else min(epochs, int(cfg.trainer.stop_after_epochs))
        for epoch in range(state["epoch"], stop):
            state["epoch"] = epoch
            train_loader.sampler.set_epoch(epoch)
            if hasattr(train_ds, "set_epoch"):
                train_ds.set_epoch(epoch)
            t0 = time.time()
            metrics = train_one_epoch(model, train_loader, task, cfg, optimizer, scheduler, scaler, ema, device,
                                      dtype, state)
            eval_model = ema.module if ema is not None else dist.unwrap(model)
            if (epoch + 1) % int(cfg.trainer.val_every) == 0 or epoch + 1 == epochs:
                metrics |= validate(eval_model, val_loader, task, cfg, device)
            metrics["epoch_s"] = time.time() - t0
            if not dist.is_main():
                continue
            value = metrics.get(f"val/{monitor}")
            improved = value is not None and (state["best"] is None or
                                              (value < state["best"] if mode == "min" else value > state["best"]))
            if improved:
                state["best"], state["best_epoch"] = value, epoch
            ckpt = {"model": dist.unwrap(model).state_dict(), "config": cfg_dict, "epoch": epoch,
                    "model_module": type(dist.unwrap(model)).__module__,     # what load_model imports
                    "step": state["step"], "best": state["best"], "best_epoch": state["best_epoch"], "metrics": metrics,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(), "ema": ema.module.state_dict() if ema is not None else None,
                    "rng": checkpoint.rng_state()}
            checkpoint.save_atomic(ckpt, out_dir / "last.pt")
            if improved:
                checkpoint.save_atomic(ckpt, out_dir / "best.pt")
            logger.log({**metrics, "epoch": epoch}, state["step"])
            if logger.wandb is not None and hasattr(task, "preview"):
                logger.images("val/preview", task.preview(eval_model, val_ds, cfg, device), state["step"])
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                              if isinstance(v, float) and k.count("/") <= 1)  # per-type figures: log.jsonl
            print(f"[stage {cfg.stage.id}] epoch {epoch + 1}/{epochs} {shown}", flush=True)
        dist.barrier()
        if dist.is_main():
            best = (f", best.pt (epoch {state['best_epoch'] + 1}, val/{monitor}={state['best']:.4g})"
                    if state["best_epoch"] is not None else "")
            print(f"[stage {cfg.stage.id}] checkpoints in {out_dir}: last.pt{best}", flush=True)
        return {**metrics, "best": state["best"], "checkpoint": str(out_dir / "last.pt")}
    finally:
        # Free everything before the next job of a multirun sweep starts in this process.
        if logger is not None:
            logger.finish()
        del model, ema, optimizer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        dist.cleanup()
