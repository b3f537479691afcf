"""Evaluate a stage-1 checkpoint on its validation fold, per image type.

    python -m stage1_rectify.evaluate CHECKPOINT [stage0=STAGE0_CHECKPOINT] [tta=true] [key=value ...]

Without ``stage0`` each page is normalised by the jittered true homography, as in training (stage 1 alone); with
it, by stage 0's own predictions on the raw images: the rectification error of the two stages together.
Surface-fit settings can be overridden for ablations, e.g. ``model.smoothing=100`` or ``model.method=poly``.
"""
from __future__ import annotations

import sys

import cv2
import torch
from tqdm import tqdm

from engine.checkpoint import load_model
from engine.evaluate import evaluate, report
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
            raw = cv2.imread(str(source_image(cfg.data.dir, item)), cv2.IMREAD_COLOR)
            r = predict(model, [raw], int(cfg0["model"]["input_size"]), tta=tta)[0]
            failed += r.H is None
            Hs.append(r.H if r.H is not None else whole_image_homography(raw.shape))
        val.homographies = Hs
        print(f"stage 0: {failed} of {len(Hs)} pages without a homography")
    return prepare


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit(__doc__)
    opts = dict(a.split("=", 1) for a in argv[1:] if a.split("=", 1)[0] in ("stage0", "tta"))
    rest = [a for a in argv[1:] if a.split("=", 1)[0] not in ("stage0", "tta")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    hook = stage0_homographies(opts["stage0"], opts.get("tta", "true") == "true", device) if "stage0" in opts else None
    print(report(evaluate(argv[0], rest, device, hook)))


if __name__ == "__main__":
    main()
