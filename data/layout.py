"""Page layouts as data: which lead is printed where, over which time window, on which baseline.

A layout is a small YAML file in ``data/layouts/`` (rows of short leads left to right, rhythm strips under them,
the zero-mV y of each row in canonical px), named as clinicians and ECG-Image-Kit name them: ``3x4+II`` (the
competition's page, the default), ``3x4``, ``3x4+V1``, ``6x2``, ``6x2+II``, ``12x1``.  ``3x4+<leads>`` with any
strips (``3x4+V1,II,V5``) is built from ``3x4`` with the strips added.  ``data.geometry`` takes every layout number
of the canonical page from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

LAYOUT_DIR = Path(__file__).parent / "layouts"
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
DEFAULT = "3x4+II"
DURATION_S = 10.0
PAGE_H = 1700.0                 # canonical page height, px (data.geometry.PAGE_H)


class LayoutError(ValueError):
    """A layout name or file that does not describe a page we can read."""


@dataclass(frozen=True)
class LeadSlot:
    """Where one printed lead sits: page row, column, the time window it shows (seconds), and whether it is a
    rhythm strip (a lead over the whole record under the rows)."""
    lead: str
    row: int
    col: int
    t0: float
    t1: float
    rhythm: bool = False

    @property
    def is_rhythm(self) -> bool:
        return self.rhythm


@dataclass(frozen=True)
class Layout:
    name: str
    rows: tuple[tuple[str, ...], ...]
    strips: tuple[str, ...]
    baselines: tuple[float, ...]

    @property
    def n_cols(self) -> int:
        return len(self.rows[0])

    @property
    def n_rows(self) -> int:
        """Printed rows, the strips included."""
        return len(self.rows) + len(self.strips)

    def slots(self) -> list[LeadSlot]:
        """Every printed trace: the rows' leads row by row, left to right, then the strips top to bottom."""
        col_s = DURATION_S / self.n_cols
        out = [LeadSlot(lead, r, c, col_s * c, col_s * (c + 1)) for r, row in enumerate(self.rows)
               for c, lead in enumerate(row)]
        return out + [LeadSlot(lead, len(self.rows) + i, 0, 0.0, DURATION_S, rhythm=True)
                      for i, lead in enumerate(self.strips)]

    def slot_samples(self, slot: LeadSlot, n: int) -> tuple[int, int]:
        """Sample range [start, stop) of a record of n samples that ``slot`` prints.  Columns split the record as
        ``j*n//n_cols`` so that rates with fractional column lengths (1025 Hz) still tile it."""
        if slot.rhythm:
            return 0, n
        return slot.col * n // self.n_cols, (slot.col + 1) * n // self.n_cols

    def lead_slot(self, lead: str) -> LeadSlot:
        """The slot a lead is read from: its rhythm strip when it has one (the longest print), else its short slot."""
        return max((s for s in self.slots() if s.lead == lead), key=lambda s: s.t1 - s.t0)

    def lead_samples(self, lead: str, n: int) -> tuple[int, int]:
        """Sample range [start, stop) of a record of n samples over which the page prints ``lead``."""
        return self.slot_samples(self.lead_slot(lead), n)

    @property
    def pitch(self) -> float:
        """The smallest distance between two printed rows' baselines, canonical px."""
        return float(min(b - a for a, b in zip(self.baselines, self.baselines[1:])))

    def check(self) -> "Layout":
        in_rows = [lead for row in self.rows for lead in row]
        unknown = sorted(set(in_rows + list(self.strips)) - set(LEADS))
        if unknown:
            raise LayoutError(f"layout {self.name}: unknown leads {unknown} (known: {', '.join(LEADS)})")
        if sorted(in_rows) != sorted(LEADS) or len({len(r) for r in self.rows}) != 1:
            raise LayoutError(f"layout {self.name}: its rows must print each of the 12 leads once, in rows of "
                              f"equal length")
        if len(self.baselines) != self.n_rows or list(self.baselines) != sorted(self.baselines):
            raise LayoutError(f"layout {self.name}: needs {self.n_rows} baselines, top to bottom")
        return self


def spaced_baselines(n_rows: int, n_strips: int) -> tuple[float, ...]:
    """ECG-Image-Kit's spacing, for a layout with no file: a pitch of page height / (rows + strips + 2), the first
    row 1.5 pitches down (2.5 when there are strips), strips 3 mm (23.6 px) above their pitch (as on its 3x4+V1
    and 6x2+II pages)."""
    n = n_rows + n_strips
    pitch = PAGE_H / (n + 2)
    first = 2.5 if n_strips else 1.5
    return tuple(round(pitch * (first + i) - (23.62 if i >= n_rows else 0.0), 2) for i in range(n))


@lru_cache(maxsize=None)
def get_layout(name: str = DEFAULT) -> Layout:
    """The layout of that name: its file in data/layouts/, or ``3x4+<leads>`` built from ``3x4``."""
    path = LAYOUT_DIR / f"{name}.yaml"
    if path.is_file():
        d = yaml.safe_load(path.read_text())
        return Layout(name, tuple(tuple(r) for r in d["rows"]), tuple(d.get("strips") or ()),
                      tuple(float(b) for b in d["baselines"])).check()
    base, plus, strips = name.partition("+")
    if base == "3x4" and plus and strips:
        rows = get_layout("3x4").rows
        leads = tuple(s.strip() for s in strips.split(","))
        return Layout(name, rows, leads, spaced_baselines(len(rows), len(leads))).check()
    raise LayoutError(f"unknown layout {name!r}: known {', '.join(known_layouts())} and 3x4+<leads> "
                      f"(e.g. 3x4+V1,II,V5)")


def known_layouts() -> list[str]:
    return sorted(p.stem for p in LAYOUT_DIR.glob("*.yaml"))
