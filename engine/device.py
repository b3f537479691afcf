"""Device choice, moving batches, mixed precision and step timing: the one home for ``device=auto|cpu|cuda|cuda:N``."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU when there is one (``local_rank`` under torchrun), else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """True where the CPU multiplies bf16 natively (AMX or AVX512-BF16; Linux flags): there bf16 autocast runs stage
    2 about twice as fast (inference and training) at the same score; elsewhere it is emulated, and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_dtype(precision: str, device: torch.device):
    """The autocast dtype of a forward, training or inference (None = fp32).  'auto': bf16 on GPUs that have it, else
    fp16; on a CPU bf16 where it is native (``cpu_has_bf16``), else fp32.  'fp32', 'bf16' and (GPU) 'fp16' force."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if precision == "fp16":
        raise ValueError("precision=fp16 is for GPUs; on a CPU use bf16 (or auto)")
    return torch.bfloat16 if precision == "bf16" or cpu_has_bf16() else None


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """Tensors of a batch dict to ``device`` (4-D float ones channels-last on request); other values unchanged."""
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4 and v.is_floating_point():
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class Timer:
    """Seconds spent per named step, summed over calls (``with timer("stage1"): ...``); waits for the GPU so that
    asynchronous kernels are charged to the step that launched them."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds[name] += time.perf_counter() - t0

    def report(self, n_images: int) -> str:
        total = sum(self.seconds.values())
        lines = [f"time per image over {n_images} images ({self.device.type}):"]
        lines += [f"  {name:<18} {t / max(n_images, 1):7.3f} s  ({100 * t / max(total, 1e-9):4.1f} %)"
                  for name, t in self.seconds.items()]
        return "\n".join(lines + [f"  {'total':<18} {total / max(n_images, 1):7.3f} s"])
