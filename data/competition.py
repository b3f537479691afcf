"""Read a directory in the competition's layout into typed records, lead tables and scoring solutions.

Layout: train.csv (id, fs, sig_len), train/{id}/{id}.csv (12 leads in mV, NaN outside each short lead's window),
train/{id}/{id}-{type}.png, test.csv (id, lead, fs, number_of_rows), test/{id}.png.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from data.geometry import LEADS
from data.submission import check_lead_table, row_ids

IMAGE_TYPES = {
    "0001": "clean ECG-Image-Kit render",
    "0003": "colour print, colour scan",
    "0004": "colour print, B/W scan",
    "0005": "phone photo of print",
    "0006": "phone photo of a screen",
    "0009": "photo, stained/soaked",
    "0010": "photo, heavy damage",
    "0011": "scan with mould, colour",
    "0012": "scan with mould, B/W",
    "0015": "wrinkles and creases",
}


class DataLayoutError(FileNotFoundError):
    """A file the competition layout promises is missing or malformed."""


@dataclass(frozen=True)
class Record:
    id: str
    fs: int
    sig_len: int
    dir: Path

    @property
    def csv(self) -> Path:
        return self.dir / f"{self.id}.csv"

    def image(self, image_type: str) -> Path:
        return self.dir / f"{self.id}-{image_type}.png"

    def image_types(self) -> list[str]:
        return sorted(p.stem.rsplit("-", 1)[1] for p in self.dir.glob(f"{self.id}-*.png"))


def image_key(record_id: str, image_type: str) -> str:
    """Image id for local validation on train images: unique per image, no '_' (the metric splits ids on it)."""
    return f"{record_id}-{image_type}"


def _read_csv(path: Path, **kw) -> pd.DataFrame:
    if not path.is_file():
        raise DataLayoutError(f"{path} not found; is data_dir the unzipped competition (or a data.synth output)?")
    return pd.read_csv(path, **kw)


class Competition:
    """A competition-layout directory (the real data, eik_dev, or a synthetic one)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataLayoutError(f"data_dir {self.root} does not exist")

    # ---- train -------------------------------------------------------------------------------------------
    @cached_property
    def train_meta(self) -> pd.DataFrame:
        return _read_csv(self.root / "train.csv", dtype={"id": str})

    def records(self) -> list[Record]:
        return [Record(r.id, int(r.fs), int(r.sig_len), self.root / "train" / r.id)
                for r in self.train_meta.itertuples(index=False)]

    @cached_property
    def _records_by_id(self) -> dict[str, Record]:
        return {r.id: r for r in self.records()}

    def record(self, record_id: str) -> Record:
        if record_id not in self._records_by_id:
            raise KeyError(f"record {record_id} is not in {self.root / 'train.csv'}")
        return self._records_by_id[record_id]

    def images(self, types: list[str] | None = None) -> pd.DataFrame:
        """One row per train image: record id, image type, fs, path, image key."""
        rows = [{"id": r.id, "type": t, "fs": r.fs, "path": r.image(t), "image_id": image_key(r.id, t)}
                for r in self.records() for t in r.image_types() if types is None or t in types]
        return pd.DataFrame(rows, columns=["id", "type", "fs", "path", "image_id"])

    def load_signals(self, record_id: str) -> pd.DataFrame:
        """The 12 leads (mV) of one record, NaN outside each short lead's window."""
        path = self.record(record_id).csv
        df = _read_csv(path)
        missing = [lead for lead in LEADS if lead not in df]
        if missing:
            raise DataLayoutError(f"{path} lacks leads {missing}")
        return df[list(LEADS)].astype(np.float64)

    def load_leads(self, record_id: str) -> dict[str, tuple[int, np.ndarray]]:
        """lead -> (start sample, values inside its window)."""
        return {lead: lead_window(col) for lead, col in self.load_signals(record_id).items()}

    # ---- test --------------------------------------------------------------------------------------------
    @cached_property
    def test_meta(self) -> pd.DataFrame:
        """test.csv, checked row by row (``data.submission.check_lead_table``) before any image is read."""
        path = self.root / "test.csv"
        return check_lead_table(_read_csv(path, dtype={"id": str, "lead": str}), str(path))

    def missing_test_images(self) -> list[str]:
        """Ids of test.csv whose test/{id}.png does not exist."""
        return [i for i in self.test_meta["id"].unique() if not self.test_image(i).is_file()]

    def test_image(self, image_id: str) -> Path:
        return self.root / "test" / f"{image_id}.png"

    # ---- local validation --------------------------------------------------------------------------------
    def lead_table(self, record_ids=None, types: list[str] | None = None) -> pd.DataFrame:
        """test.csv-style table (id, lead, fs, number_of_rows) for train images, ids from :func:`image_key`."""
        return self._validation_frames(record_ids, types)[0]

    def solution(self, record_ids=None, types: list[str] | None = None) -> pd.DataFrame:
        """Scoring solution (id='{image}_{row}_{lead}', fs, value, type) for train images."""
        return self._validation_frames(record_ids, types)[1]

    def _validation_frames(self, record_ids, types):
        images = self.images(types)
        if record_ids is not None:
            images = images[images["id"].isin([str(i) for i in record_ids])]
        tables, sols = [], []
        for rid, group in images.groupby("id", sort=False):
            leads = self.load_leads(rid)
            fs = int(group["fs"].iloc[0])
            for image_id, image_type in zip(group["image_id"], group["type"]):
                tables.append(pd.DataFrame({"id": image_id, "lead": list(LEADS), "fs": fs,
                                            "number_of_rows": [leads[lead][1].size for lead in LEADS]}))
                sols.append(solution_frame(image_id, fs, {k: v for k, (_, v) in leads.items()}, image_type))
        cols_t, cols_s = ["id", "lead", "fs", "number_of_rows"], ["id", "fs", "value", "type"]
        table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols_t)
        sol = pd.concat(sols, ignore_index=True) if sols else pd.DataFrame(columns=cols_s)
        return table, sol


def lead_window(column: pd.Series | np.ndarray) -> tuple[int, np.ndarray]:
    """(start, values) of the contiguous non-NaN window of one CSV column."""
    values = np.asarray(column, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(values))
    if idx.size == 0:
        raise DataLayoutError("a lead column holds no value")
    return int(idx[0]), values[idx[0]:idx[-1] + 1]


def solution_frame(image_id: str, fs: int, leads: dict[str, np.ndarray], image_type: str | None = None) -> pd.DataFrame:
    """Rows '{image}_{row}_{lead}' with the true values of one image."""
    parts = [pd.DataFrame({"id": row_ids(image_id, lead, len(leads[lead])),
                           "fs": fs, "value": np.asarray(leads[lead], dtype=np.float64)}) for lead in LEADS]
    out = pd.concat(parts, ignore_index=True)
    if image_type is not None:
        out["type"] = image_type
    return out
