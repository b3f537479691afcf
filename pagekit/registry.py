"""The model registry (as timm has one): every network class registers under the ``model.name`` of its config, and
``load_model`` rebuilds a network from its checkpoint alone: no Hydra, no internet, no dataset or training loop.

    @register_model("keypoint_unet")
    class KeypointNet(nn.Module):
        def __init__(self, m: dict): ...            # m = the model section of the resolved config

    model, cfg = load_model("runs/stage0/.../best.pt")

A checkpoint records the module of its model class (``model_module``), so loading imports exactly that module.
"""
from __future__ import annotations

import importlib
from typing import Callable, Mapping

from omegaconf import OmegaConf
from torch import nn

from engine.checkpoint import load

_MODELS: dict[str, Callable[[dict], nn.Module]] = {}


def register_model(name: str):
    def add(cls):
        if _MODELS.get(name, cls) is not cls:
            raise ValueError(f"model name {name!r} is registered twice "
                             f"({_MODELS[name].__module__} and {cls.__module__})")
        _MODELS[name] = cls
        return cls
    return add


def list_models() -> list[str]:
    return sorted(_MODELS)


def plain(m) -> dict:
    """A config section (DictConfig or mapping) as a plain, resolved dict."""
    return OmegaConf.to_container(m, resolve=True) if OmegaConf.is_config(m) else dict(m)


def create_model(m, module: str | None = None) -> nn.Module:
    """The network that the model config ``m`` names (``m["name"]``); ``module`` is imported first if given."""
    m = plain(m)
    if module and m.get("name") not in _MODELS:
        importlib.import_module(module)
    if m.get("name") not in _MODELS:
        raise ValueError(f"model.name={m.get('name')!r} is not a registered model; registered: {list_models()} "
                         "(a model registers when its module is imported)")
    return _MODELS[m["name"]](m)


def load_model(path, map_location="cpu", overrides=None):
    """Rebuild a model from a checkpoint alone.  Returns (model in eval mode, config dict).  ``overrides``
    (["model.smoothing=100"] or {"model.smoothing": 100}) change the returned config, e.g. decoding settings for
    inference; the EMA weights are used when the checkpoint has them."""
    ckpt = load(path, map_location)
    cfg = override(OmegaConf.create(ckpt["config"]), overrides, f"checkpoint {path}")
    offline = OmegaConf.merge(cfg.model, {"pretrained": False, "weights_path": None})  # weights: the file's
    if "name" not in offline:
        raise ValueError(f"{path}: its config has no model.name (written before the model registry, Nov 2026); "
                         f"retrain it with this version (registered models: {list_models()})")
    model = create_model(offline, ckpt.get("model_module"))
    model.load_state_dict(ckpt.get("ema") or ckpt["model"])
    model.eval()
    return model, OmegaConf.to_container(cfg, resolve=True)


def override(cfg, overrides, what: str):
    """``cfg`` with overrides applied: "key=value" strings (values parsed as YAML, as Hydra does) or a mapping of
    key -> value.  A key that ``cfg`` does not have is an error naming it and the keys of its section, so a
    misspelled option is never silently ignored."""
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else [
        (k.strip(), v) for k, _, v in (item.partition("=") for item in overrides or [])]
    for key, _ in pairs:
        if OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            section = key.rpartition(".")[0]
            known = OmegaConf.select(cfg, section) if section else cfg
            keys = sorted(known.keys()) if OmegaConf.is_dict(known) else []
            where = f"; {section or 'the top level'} has {keys}" if keys else ""
            raise ValueError(f"{what}: unknown key {key!r}{where}")
    if isinstance(overrides, Mapping):
        cfg = cfg.copy()
        for key, value in pairs:
            OmegaConf.update(cfg, key, value, merge=True)
        return cfg
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides or [])))


_ABSENT = object()
