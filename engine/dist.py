"""torchrun / DistributedDataParallel helpers; a plain ``python train.py`` is world size 1 with the same code."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup() -> tuple[int, int, int]:
    """(rank, local_rank, world_size); initialises the process group under torchrun, or under SLURM tasks started
    by submitit (conf/hydra/launcher/slurm.yaml), whose variables are turned into torchrun's first."""
    if "WORLD_SIZE" not in os.environ and os.environ.get("SUBMITIT_EXECUTOR") == "slurm" \
            and int(os.environ.get("SLURM_NTASKS", 1)) > 1:
        from submitit.helpers import TorchDistributedEnvironment
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)   # cuda:LOCAL_RANK picks the GPU
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), world


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
