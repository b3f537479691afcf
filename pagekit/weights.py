"""Where checkpoints come from, and the slim files that ship.

``resolve_checkpoints`` turns what a user writes after ``checkpoints=`` into local files: nothing -> the ``*.pt`` files
of the repository's ``weights/``; a file -> itself; a folder -> its ``*.pt`` files; ``hf://owner/repo`` (all its
``*.pt`` files) or ``hf://owner/repo/file.pt[@revision]`` -> the Hugging Face Hub's cached copy, downloaded when online.
With ``HF_HUB_OFFLINE=1`` only the cache is read, and an id that is not in it is named with the way to fetch it.

``export`` writes what ships: the weights in fp16 (the EMA ones when the run kept them), the resolved config, the
model's module and the run's figures, nothing to resume training with (optimizer, RNG).
"""
from __future__ import annotations

from pathlib import Path

import torch

from data.files import atomic_path
from engine.checkpoint import load

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
HF_PREFIX = "hf://"
CALIBRATION = WEIGHTS_DIR / "confidence.json"     # expected_snr_db's fit for weights/stage2.pt (pagekit.confidence)


class WeightsNotFound(FileNotFoundError):
    pass


def _hub(spec: str) -> list[Path]:
    """``hf://owner/repo[/path/file.pt][@revision]`` -> local files from the Hub cache (downloaded when online)."""
    import huggingface_hub as hub

    ident, _, revision = spec[len(HF_PREFIX):].partition("@")
    parts = ident.strip("/").split("/")
    if len(parts) < 2:
        raise WeightsNotFound(f"{spec}: a Hub id is hf://owner/repo or hf://owner/repo/file.pt")
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        if filename:
            return [Path(hub.hf_hub_download(repo, filename, revision=revision or None))]
        folder = Path(hub.snapshot_download(repo, revision=revision or None, allow_patterns=["*.pt", "*.md"]))
    except Exception as e:                     # noqa: BLE001 - the Hub raises many kinds; one message for all
        offline = hub.constants.HF_HUB_OFFLINE
        how = (f"it is not in the Hugging Face cache and HF_HUB_OFFLINE=1; fetch it once where there is internet "
               f"(`hf download {repo}{' ' + filename if filename else ''}`, or run without HF_HUB_OFFLINE) "
               f"or give a local path" if offline else f"{type(e).__name__}: {e}")
        raise WeightsNotFound(f"checkpoint {spec}: {how}") from None
    found = sorted(folder.rglob("*.pt"))
    if not found:
        raise WeightsNotFound(f"checkpoint {spec}: the repository holds no .pt file")
    return found


def resolve_checkpoints(specs: list[str] | None) -> list[str]:
    """``checkpoints=`` as given -> local .pt files (see the module's docstring); an empty list means ``weights/``."""
    if not specs:
        found = sorted(WEIGHTS_DIR.glob("*.pt"))
        if not found:
            raise WeightsNotFound(
                f"no checkpoints=[...] given and {WEIGHTS_DIR} holds no weights: pass checkpoints=[s0.pt,s1.pt,s2.pt] "
                "(README: Training), a Hub id checkpoints=[hf://owner/repo], or use the classical digitizer "
                "(method=classical) that needs none")
        return [str(p) for p in found]
    out: list[str] = []
    for spec in specs:
        spec = str(spec)
        if spec.startswith(HF_PREFIX):
            out += [str(p) for p in _hub(spec)]
            continue
        path = Path(spec).expanduser()
        if path.is_dir():
            found = sorted(path.glob("*.pt"))
            if not found:
                raise WeightsNotFound(f"checkpoint folder {path} holds no .pt file")
            out += [str(p) for p in found]
        elif path.is_file():
            out.append(str(path))
        else:
            raise WeightsNotFound(f"checkpoint {spec} not found (a .pt file, a folder of them, or hf://owner/repo)")
    return out


def export(ckpt_path: str | Path, out_path: str | Path) -> dict:
    """A training checkpoint -> the fp16 file that ships (atomically written); returns what was written."""
    ckpt = load(ckpt_path)
    state = ckpt.get("ema") or ckpt["model"]
    slim = {
        "model": {k: v.half() if v.is_floating_point() else v for k, v in state.items()},
        "config": ckpt["config"],
        "model_module": ckpt.get("model_module"),
        "epoch": ckpt.get("epoch"),
        "best_epoch": ckpt.get("best_epoch"),
        "metrics": {k: float(v) for k, v in (ckpt.get("metrics") or {}).items()},   # no numpy: weights_only loads
        "step": ckpt.get("step"),
    }
    with atomic_path(out_path) as tmp:
        torch.save(slim, tmp)
    return slim
