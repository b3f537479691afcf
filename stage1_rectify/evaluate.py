"""Evaluate a stage-1 checkpoint on its validation fold, per image type.

    python -m stage1_rectify.evaluate CHECKPOINT [stage0=STAGE0_CHECKPOINT] [tta=true] [device=auto] [key=value ...]

Without ``stage0`` each page is normalised by the jittered true homography, as in training (stage 1 alone); with
it, by stage 0's own predictions on the raw images: the rectification error of the two stages together.
Any key of the checkpoint's config can be overridden, e.g. the surface fit: ``model.smoothing=100`` or
``model.method=poly``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tqdm import tqdm

from data import cli
from engine.device import resolve_device
from engine.evaluate import evaluate, report
from pagekit.image import read_image
from pagekit.registry import load_model
from stage1_rectify.dataset import source_image
from stage1_rectify.predict import whole_image_homography


def stage0_homographies(stage0_checkpoint: str, tta: bool = True, device: str = "cpu"):
    """A ``prepare_val`` hook: replace the validation pages' homographies by stage 0's predictions."""
    from stage0_keypoints.predict import predict

    model, cfg0 = load_model(stage0_checkpoint)
    model.to(device)

    def prepare(val, cfg):
        Hs, failed = [], 0
        for item in tqdm(val.items, desc="stage0"):
            raw = read_image(source_image(cfg.data.dir, item))
            r = predict(model, [raw], int(cfg0["model"]["input_size"]), tta=tta)[0]
            failed += r.H is None
            Hs.append(r.H if r.H is not None else whole_image_homography(raw.shape))
        val.homographies = Hs
        print(f"stage 0: {failed} of {len(Hs)} pages without a homography")
    return prepare


@dataclass
class Options:
    checkpoint: str
    stage0: str | None = None
    tta: bool = True
    device: str = "auto"
    overrides: dict = field(default_factory=dict)


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoint",), rest="overrides")
    device = resolve_device(opts.device)
    with cli.reported():
        model, config = load_model(opts.checkpoint, overrides=[f"{k}={v}" for k, v in opts.overrides.items()])
    hook = stage0_homographies(opts.stage0, opts.tta, device) if opts.stage0 else None
    print(report(evaluate(model, config, str(device), hook)))


if __name__ == "__main__":
    main()
