"""Label files written by the generator beside each image: the single source of truth for all stage targets.

``{stem}.label.json`` holds the keypoints (13 lead-name centres), page corners, the 5 mm grid lattice with its
indices, the orientation, the recipe and the page layout; ``{stem}.map.npz`` holds the dense map: image pixel
position of every canonical page point on a grid of stride ``MAP_STRIDE`` canonical px.  Warping either way derives
from that map.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.interpolate import griddata
from scipy.ndimage import map_coordinates

from data import geometry as G
from data.files import atomic_path, write_text

MAP_STRIDE = 10


class LabelFileError(ValueError):
    """A label file that cannot be used; the message names the file."""


def keypoint_names() -> list[str]:
    return [s.lead + ("_rhythm" if s.is_rhythm else "") for s in G.lead_slots()]


def map_grid_shape() -> tuple[int, int]:
    return G.PAGE_H // MAP_STRIDE + 1, G.PAGE_W // MAP_STRIDE + 1


def canonical_points() -> dict[str, np.ndarray]:
    """Everything the generator tracks, in canonical page pixels (scale 1)."""
    gh, gw = map_grid_shape()
    gy, gx = np.mgrid[0:gh, 0:gw] * MAP_STRIDE
    lattice, _ = G.grid_lattice()
    return {"keypoints": np.stack([G.lead_label_centre(s) for s in G.lead_slots()]),
            "corners": G.page_corners() - 0.5,   # outer edges of the corner pixels
            "lattice": lattice,
            "map": np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float64)}


@dataclass
class PageLabel:
    image_size: tuple[int, int]           # (width, height) of the image
    image_type: str
    orientation: int                      # quarter turns clockwise applied to the page
    keypoints: np.ndarray                 # (13, 2) image px, order of keypoint_names()
    corners: np.ndarray                   # (4, 2) image px: TL, TR, BR, BL of the page
    lattice: np.ndarray                   # (N, 2) image px of the 5 mm intersections
    lattice_ij: np.ndarray                # (N, 2) their (column, row) lattice indices
    map_xy: np.ndarray                    # (gh, gw, 2) image px of canonical points (x=c*stride, y=r*stride)
    recipe: list = field(default_factory=list)
    # The page layout printed (data.layout).  The keypoints are the competition page's 13 lead-name positions
    # whatever it is: stage 0 learns them from 3x4+II pages only; stages 1 and 2 read any layout.
    layout: str = G.DEFAULT_LAYOUT

    @classmethod
    def from_tracked(cls, tracked, image_size, image_type, orientation, recipe,
                     layout: str = G.DEFAULT_LAYOUT) -> "PageLabel":
        _, ij = G.grid_lattice()
        return cls(tuple(image_size), image_type, orientation, tracked["keypoints"], tracked["corners"],
                   tracked["lattice"], ij, tracked["map"].reshape(*map_grid_shape(), 2).astype(np.float32), recipe,
                   layout)

    # ---- io --------------------------------------------------------------------------------------------------
    def save(self, json_path: str | Path) -> None:
        json_path = Path(json_path)
        r = lambda a: np.round(np.asarray(a, dtype=np.float64), 3).tolist()  # noqa: E731
        doc = {"image_size": list(self.image_size), "image_type": self.image_type, "orientation": self.orientation,
               "keypoint_names": keypoint_names(), "keypoints": r(self.keypoints), "corners": r(self.corners),
               "lattice": r(self.lattice), "lattice_ij": np.asarray(self.lattice_ij).tolist(),
               "map_file": _map_path(json_path).name, "map_stride": MAP_STRIDE, "recipe": self.recipe,
               "layout": self.layout}
        with atomic_path(_map_path(json_path)) as tmp:       # the map first: a label file never names a missing map
            np.savez_compressed(tmp, map_xy=self.map_xy)
        write_text(json_path, json.dumps(doc))

    @classmethod
    def load(cls, json_path: str | Path) -> "PageLabel":
        """Read a label file; one that is unreadable, not JSON, incomplete or missing its map raises
        LabelFileError naming the label file (not the image) and what is wrong with it."""
        json_path = Path(json_path)
        try:
            doc = json.loads(json_path.read_text())
            map_xy = np.load(json_path.parent / doc["map_file"])["map_xy"]
            return cls(tuple(doc["image_size"]), doc["image_type"], doc["orientation"], np.array(doc["keypoints"]),
                       np.array(doc["corners"]), np.array(doc["lattice"]), np.array(doc["lattice_ij"]), map_xy,
                       doc["recipe"], doc.get("layout", G.DEFAULT_LAYOUT))     # files written before layouts
        except json.JSONDecodeError as e:
            raise LabelFileError(f"label file {json_path} is not valid JSON ({e}); regenerate it") from None
        except KeyError as e:
            raise LabelFileError(f"label file {json_path} lacks the field {e}; regenerate it") from None
        except (OSError, ValueError, TypeError) as e:
            raise LabelFileError(f"label file {json_path} (or its map) cannot be read: {e}") from None

    # ---- geometry --------------------------------------------------------------------------------------------
    def canon_to_image(self, pts: np.ndarray, k: float | tuple[float, float] = 1.0) -> np.ndarray:
        """Canonical page px (at scale k or (kx, ky)) -> image px, bilinear in the dense map."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2) / (np.array(G.scales(k)) * MAP_STRIDE)
        coords = [p[:, 1], p[:, 0]]
        return np.stack([map_coordinates(self.map_xy[..., c], coords, order=1, mode="nearest")
                         for c in range(2)], -1)

    def homography(self, using: str = "lattice") -> np.ndarray:
        """3x3 least-squares homography image px -> canonical page px (scale 1) over the ``lattice`` points or the
        13 lead-name ``keypoints``: the page as a perfect stage 0 would normalise it."""
        canon = canonical_points()[using]
        H, _ = cv2.findHomography(getattr(self, using).astype(np.float32), canon.astype(np.float32), 0)
        return H

    def image_to_canon(self, pts: np.ndarray) -> np.ndarray:
        """Image px -> canonical page px (scale 1); NaN outside the page."""
        gh, gw = map_grid_shape()
        gy, gx = np.mgrid[0:gh, 0:gw] * MAP_STRIDE
        src = self.map_xy.reshape(-1, 2)
        return np.stack([griddata(src, g.ravel().astype(np.float64), np.asarray(pts, np.float64), "linear")
                         for g in (gx, gy)], -1)

    def rectify(self, img: np.ndarray, k: float | tuple[float, float] = 1.0) -> np.ndarray:
        """Warp the image to the canonical page at scale k or (kx, ky) with one remap (ground-truth rectification)."""
        w, h = G.page_size(k)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        m = self.canon_to_image(np.stack([xs.ravel(), ys.ravel()], -1), k).astype(np.float32)
        return cv2.remap(img, m[:, 0].reshape(h, w), m[:, 1].reshape(h, w), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))


def _map_path(json_path: Path) -> Path:
    return json_path.with_name(json_path.name.replace(".label.json", ".map.npz"))


def label_path(image_path: str | Path) -> Path:
    image_path = Path(image_path)
    return image_path.with_name(image_path.stem + ".label.json")
