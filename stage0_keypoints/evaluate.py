"""Evaluate a stage-0 checkpoint on its validation fold (or another data dir), per image type.

    python -m stage0_keypoints.evaluate CHECKPOINT [data.dir=DIR] [data.val_fold=K] [key=value ...]

The same as ``python -m engine.evaluate`` (kept for the commands in the README and earlier reports).
"""
from engine.evaluate import evaluate, main  # noqa: F401

if __name__ == "__main__":
    main()
