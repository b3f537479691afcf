"""The 5 mm grid lattice in index space: node (i, j) = (column, row) of the major-line intersections.

Fractional lattice coordinates (u, v) of a canonical point say which lines it lies between; every stage-1 target
and the fitted surfaces are expressed in them, so the page geometry stays in ``data.geometry``.
"""
from __future__ import annotations

import numpy as np

from data import geometry as G

_PTS, _IJ = G.grid_lattice()
N_VLINES = int(_IJ[:, 0].max()) + 1        # vertical major lines = lattice columns (56 on the Letter page)
N_HLINES = int(_IJ[:, 1].max()) + 1        # horizontal major lines = lattice rows (44)
SPACING = G.MAJOR_PX                       # canonical px between neighbouring lines
ORIGIN = np.asarray(G.GRID_ORIGIN, dtype=np.float64)


def to_lattice(canon: np.ndarray) -> np.ndarray:
    """Canonical page px (scale 1) -> fractional lattice coordinates (u, v)."""
    return (np.asarray(canon, dtype=np.float64) - ORIGIN) / SPACING


def to_canonical(uv: np.ndarray) -> np.ndarray:
    """Fractional lattice coordinates -> canonical page px (scale 1)."""
    return np.asarray(uv, dtype=np.float64) * SPACING + ORIGIN


def node_grid(margin: int = 0) -> np.ndarray:
    """(N_HLINES + 2m, N_VLINES + 2m, 2) lattice indices (i, j) of every node, ``margin`` nodes beyond the page."""
    j, i = np.mgrid[-margin:N_HLINES + margin, -margin:N_VLINES + margin]
    return np.stack([i, j], -1).astype(np.float64)
