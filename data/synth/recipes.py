"""Distortion recipes per image type: which steps, with which random parameters (see ``distort``)."""
from __future__ import annotations

import numpy as np

from data.geometry import PAGE_H, PAGE_W
from data.synth import distort as D

PAGE = (PAGE_W, PAGE_H)
PHOTO_SIZES = ((4032, 3024), (3264, 2448), (2016, 1512), (1344, 1008))
ORIENTATIONS = (0, 1, 2, 3)
ORIENTATION_P = (0.6, 0.15, 0.1, 0.15)   # quarter turns clockwise; most photos are upright


def _seed(rng) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _scan(rng, grey: bool) -> list:
    out = (PAGE_W, 1652) if grey else PAGE
    paper = tuple(int(v) for v in rng.uniform(225, 250, 3))
    steps = [D.Homography.scan(rng, PAGE, out, background=paper),
             D.Tint([float(v) for v in rng.uniform(0.88, 1.0, 3)], float(rng.uniform(0, 8))),
             D.Blur(float(rng.uniform(0.3, 0.9))),
             D.Noise(float(rng.uniform(2, 6)), _seed(rng))]
    if grey:
        steps.insert(2, D.Gray(float(rng.uniform(0.8, 1.6)), float(rng.choice([0.0, rng.uniform(0.45, 0.7)]))))
    return steps


def _photo(rng, size=None, background=None, fill=(0.55, 0.9)) -> list:
    W, H = size or PHOTO_SIZES[int(rng.integers(len(PHOTO_SIZES)))]
    background = background or tuple(int(v) for v in rng.uniform(40, 170, 3))
    k = int(rng.choice(ORIENTATIONS, p=ORIENTATION_P))
    return [D.Homography.place(rng, PAGE, (W, H), fill=fill, background=background),
            D.Radial.sample(rng),
            D.Rot90(k),
            D.Lighting.sample(rng),
            D.Blur(float(rng.uniform(0.4, 1.8))),
            D.Noise(float(rng.uniform(2, 7)), _seed(rng)),
            D.Jpeg(int(rng.integers(60, 93)))]


def _wrinkles(rng, n=(2, 8), amp=(0.5, 3.0)) -> list:
    c = D.Creases.sample(rng, PAGE, n, amp)
    return [c, D.Shade(c)]


def _screen(rng) -> list:
    # The page fills a laptop screen (dark bezel); the photo then sees the screen.
    screen = (1920, 1200)
    place = D.Homography.place(rng, PAGE, screen, fill=(0.9, 0.98), jitter=0.0, background=(20, 20, 20))
    photo = _photo(rng, background=tuple(int(v) for v in rng.uniform(10, 60, 3)))
    # people photograph a screen from close up: it fills most of the frame
    photo[0] = D.Homography.place(rng, screen, photo[0].size, fill=(0.8, 1.0), background=photo[0].background)
    return [place, D.Screen.sample(rng)] + photo


def recipe(image_type: str, rng: np.random.Generator) -> list:
    """The steps that turn a clean canonical page into an image of ``image_type``."""
    t = image_type
    if t == "0001":
        return []
    if t == "0003":
        return _scan(rng, grey=False)
    if t == "0004":
        return _scan(rng, grey=True)
    if t == "0005":
        return _photo(rng)
    if t == "0006":
        return _screen(rng)
    if t == "0009":
        return [D.Blotches("stain", _seed(rng), int(rng.integers(2, 6))), D.Blur(float(rng.uniform(0.3, 1.0))),
                D.Tint([0.85, 0.95, 1.0])] + _photo(rng)
    if t == "0010":
        photo = _photo(rng)
        return _wrinkles(rng, (3, 8), (1.0, 5.0)) + [D.Damage(_seed(rng), photo[0].background)] + photo
    if t == "0011":
        return [D.Blotches("mould", _seed(rng), int(rng.integers(2, 7)))] + _scan(rng, grey=False)
    if t == "0012":
        return [D.Blotches("mould", _seed(rng), int(rng.integers(2, 7)))] + _scan(rng, grey=True)
    if t == "0015":
        return _wrinkles(rng) + [D.Tint([float(v) for v in rng.uniform(0.92, 1.0, 3)])]
    raise ValueError(f"unknown image type {image_type!r}; known: {sorted(TYPES)}")


TYPES = ("0001", "0003", "0004", "0005", "0006", "0009", "0010", "0011", "0012", "0015")


def orientation(steps: list) -> int:
    """Quarter turns (clockwise) the recipe applied to the page."""
    return sum(s.k for s in steps if isinstance(s, D.Rot90)) % 4
