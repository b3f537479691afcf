"""Photometric augmentation of page images (brightness, colour, blur, noise, JPEG), shared by stages 1 and 2."""
from __future__ import annotations

import albumentations as A


def photometric(strength: float) -> A.Compose:
    return A.Compose([
        A.RandomBrightnessContrast(0.25 * strength, 0.25 * strength, p=0.7),
        A.HueSaturationValue(int(15 * strength), int(25 * strength), int(15 * strength), p=0.5),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5))], p=0.3 * strength),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.3 * strength),
        A.ImageCompression(quality_range=(50, 95), p=0.3 * strength),
    ])
