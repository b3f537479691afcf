"""Page images: reading, letterboxing, downscaling, padding to the networks' stride, coordinates, ink darkness."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data import geometry as G

STRIDE = 32     # the U-Nets' total stride: every network input side is a multiple of it


MIN_SIDE_PX = 200      # a page's shorter side below this gives its 1 mm grid less than a pixel: nothing to read


class UnreadableImage(OSError):
    kind = "unreadable image"        # the reason's name in summaries (inference.digitize)


class ImageTooSmall(ValueError):
    kind = "image too small"


class TruncatedImage(UnreadableImage):
    kind = "truncated image"


def check_complete(path: str | Path) -> None:
    """Raise TruncatedImage when the file ends before its last pixel (an interrupted copy or download).  OpenCV
    decodes such a JPEG with the missing part grey and only prints a warning; Pillow raises, and at 1/8 scale
    (``draft``) the check costs a few ms.  Files Pillow cannot read for other reasons are left to OpenCV."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if "truncated" in str(e) or isinstance(e, SyntaxError):       # SyntaxError: a broken PNG chunk
            raise TruncatedImage(f"image {path} is truncated or corrupt ({e}): copy the file again") from None


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 image; a file that cannot be read, or is too small to hold a page, raises an error naming it."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    check_complete(path)
    if img is None:
        raise UnreadableImage(f"cannot read image {path} (missing, truncated, not an image, or over OpenCV's "
                              f"limit of 2^30 pixels)")
    if min(img.shape[:2]) < MIN_SIDE_PX:
        raise ImageTooSmall(f"image {path} is {img.shape[1]} x {img.shape[0]} px: too small for a 12-lead page "
                            f"(the shorter side needs {MIN_SIDE_PX} px or more)")
    return img


def as_bgr(img: np.ndarray) -> np.ndarray:
    """Grey (H, W) -> BGR; BGR unchanged."""
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Scale the longer side to ``size`` and pad right/bottom with black: returns (square RGB image, scale)."""
    img = as_bgr(img)
    h, w = img.shape[:2]
    s = size / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.zeros((size, size, 3), np.uint8)
    out[:small.shape[0], :small.shape[1]] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return out, s


def downscale(img: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """RGB image whose longer side is at most ``size`` (area-averaged, so fine grid lines do not alias), scale."""
    img = as_bgr(img)
    h, w = img.shape[:2]
    s = min(1.0, size / max(h, w))
    if s < 1:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), s


def padded(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`STRIDE`."""
    return -(-int(n) // STRIDE) * STRIDE


def padded_page_size(k) -> tuple[int, int]:
    """(w, h) of the canonical page at scale k (or (kx, ky)) padded to the stride on the right and bottom."""
    w, h = G.page_size(k)
    return padded(w), padded(h)


def pad_page(page: np.ndarray, k) -> np.ndarray:
    """Page at scale k -> white-padded to :func:`padded_page_size`."""
    w, h = padded_page_size(k)
    return cv2.copyMakeBorder(page, 0, h - page.shape[0], 0, w - page.shape[1], cv2.BORDER_CONSTANT,
                              value=(255, 255, 255))


def page_coords(size: tuple[int, int], k, offset=(0, 0)) -> np.ndarray:
    """(2, h, w) float32 page position (x / page width, y / page height) of every pixel of a (w, h) input that
    starts at ``offset`` on the page at scale k."""
    w, h = G.page_size(k)
    ys, xs = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    return np.stack([(xs + offset[0]) / w, (ys + offset[1]) / h])


def warp_to_page(img: np.ndarray, M: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp by the 3x3 homography ``M`` into a (w, h) page; what falls outside the image is white paper."""
    return cv2.warpPerspective(img, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(255, 255, 255))


def rot90_points(pts: np.ndarray, size: int, turns: int) -> np.ndarray:
    """Points of a square image after ``turns`` quarter turns clockwise (pixel centres at integers)."""
    x, y = pts[:, 0], pts[:, 1]
    for _ in range(turns % 4):
        x, y = size - 1 - y, x
    return np.stack([x, y], -1)


def ink(page: np.ndarray, background_px: int = 51) -> np.ndarray:
    """(H, W) float32 darkness in [0, 1] of a BGR page.  A pixel's brightest channel is used, so coloured grid lines
    (each bright in at least one channel) look like paper and the grey-to-black trace stays dark; dividing by the
    local paper level (a wide median) evens out shadows and tinted paper."""
    v = as_bgr(page).max(axis=2).astype(np.float32)
    paper = cv2.medianBlur(v.astype(np.uint8), background_px | 1).astype(np.float32)
    return np.clip(1.0 - v / np.maximum(paper, 1.0), 0.0, 1.0)
