"""Build, validate and write ``submission.parquet`` from per-image 12-lead predictions.

Predictions are ``{image_id: {lead: 1-D array}}``; the lead table (test.csv layout) fixes the rows.  Each lead's
prediction must already have exactly ``number_of_rows`` values (extraction resamples to that length).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from data.files import write_table
from data.geometry import LEADS


def row_ids(image_id: str, lead: str, n: int) -> list[str]:
    """The competition's row ids of one lead: '{image}_{row}_{lead}' for row 0..n-1."""
    return [f"{image_id}_{i}_{lead}" for i in range(n)]


class SubmissionError(ValueError):
    """The submission would be rejected; the message names the image and lead."""


class LeadTableError(ValueError):
    """A test.csv-style lead table the submission could not be built from; the message names the rows."""


def check_lead_table(table: pd.DataFrame, name: str = "test.csv", show: int = 10) -> pd.DataFrame:
    """Raise LeadTableError listing every bad row (unknown lead, duplicate (id, lead), number_of_rows not a whole
    number >= 0, fs not > 0, fs differing within an id) before any work is done; returns the table with
    number_of_rows and fs as integers."""
    missing = [c for c in ("id", "lead", "fs", "number_of_rows") if c not in table]
    if missing:
        raise LeadTableError(f"{name} lacks the columns {missing} (it needs id, lead, fs, number_of_rows)")
    t = table.assign(id=table["id"].astype(str), lead=table["lead"].astype(str))
    n = pd.to_numeric(t["number_of_rows"], errors="coerce")
    fs = pd.to_numeric(t["fs"], errors="coerce")
    problems: list[tuple[int, str]] = []
    for i in np.flatnonzero(~t["lead"].isin(LEADS)):
        problems.append((i, f"unknown lead {t['lead'].iloc[i]!r} (known: {', '.join(LEADS)})"))
    dup = t.duplicated(["id", "lead"], keep="first")
    for i in np.flatnonzero(dup):
        problems.append((i, "duplicates an earlier row of the same id and lead"))
    for i in np.flatnonzero(~(n.notna() & (n >= 0) & (n == n.round()))):
        problems.append((i, f"number_of_rows {t['number_of_rows'].iloc[i]} is not a whole number >= 0"))
    for i in np.flatnonzero(~(fs.notna() & (fs > 0))):
        problems.append((i, f"fs {t['fs'].iloc[i]} is not a number > 0"))
    valid_fs = t.assign(fs=fs.where(fs > 0))
    for image_id, g in valid_fs.groupby("id", sort=False):     # reported once per id, at its first row
        if g["fs"].nunique() > 1:
            problems.append((int(np.flatnonzero(t["id"] == image_id)[0]),
                             f"fs differs between the rows of this id: {sorted(g['fs'].dropna().unique())}"))
    if problems:
        problems.sort()
        lines = [f"  row {i + 2} (id {t['id'].iloc[i]}, lead {t['lead'].iloc[i]}): {why}" for i, why in problems[:show]]
        more = f"\n  ... and {len(problems) - show} more" if len(problems) > show else ""
        raise LeadTableError(f"{name}: {len(problems)} bad rows (line numbers as in the file, header = 1):\n"
                             + "\n".join(lines) + more)
    return t.assign(number_of_rows=n.astype(np.int64), fs=fs.astype(np.int64) if (fs == fs.round()).all() else fs)


def build_submission(preds: Mapping[str, Mapping[str, np.ndarray]], lead_table: pd.DataFrame) -> pd.DataFrame:
    ids, values = [], []
    for row in lead_table.itertuples(index=False):
        image_id, lead, n = str(row.id), row.lead, int(row.number_of_rows)
        if image_id not in preds:
            raise SubmissionError(f"image {image_id}: no prediction")
        if lead not in preds[image_id]:
            raise SubmissionError(f"image {image_id}, lead {lead}: no prediction")
        v = np.asarray(preds[image_id][lead], dtype=np.float64).ravel()
        if v.size != n:
            raise SubmissionError(f"image {image_id}, lead {lead}: {v.size} values, test.csv wants {n}")
        bad = ~np.isfinite(v)
        if bad.any():
            raise SubmissionError(f"image {image_id}, lead {lead}: {int(bad.sum())} NaN/inf values "
                                  f"(first at row {int(np.flatnonzero(bad)[0])})")
        ids.extend(row_ids(image_id, lead, n))
        values.append(v)
    sub = pd.DataFrame({"id": ids, "value": np.concatenate(values) if values else np.zeros(0)})
    validate_submission(sub, lead_table)
    return sub


def expected_ids(lead_table: pd.DataFrame) -> pd.Index:
    return pd.Index([i for r in lead_table.itertuples(index=False)
                     for i in row_ids(r.id, r.lead, int(r.number_of_rows))])


def validate_submission(sub: pd.DataFrame, lead_table: pd.DataFrame) -> None:
    """Every id present once, nothing extra, all values finite; raises SubmissionError naming image and lead."""
    if list(sub.columns[:2]) != ["id", "value"]:
        raise SubmissionError(f"columns must be ['id', 'value'], got {list(sub.columns)}")
    dup = sub["id"][sub["id"].duplicated()]
    if len(dup):
        raise SubmissionError(f"duplicate id {dup.iloc[0]} ({_where(dup.iloc[0])}); {len(dup)} duplicates")
    values = pd.to_numeric(sub["value"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = sub["id"].iloc[int(np.flatnonzero(bad)[0])]
        raise SubmissionError(f"{int(bad.sum())} NaN/inf values, first {first} ({_where(first)})")
    want = expected_ids(lead_table)
    have = pd.Index(sub["id"])
    missing = want.difference(have)
    if len(missing):
        raise SubmissionError(f"{len(missing)} ids missing, e.g. {missing[0]} ({_where(missing[0])})")
    extra = have.difference(want)
    if len(extra):
        raise SubmissionError(f"{len(extra)} ids not in test.csv, e.g. {extra[0]} ({_where(extra[0])})")


def _where(row_id: str) -> str:
    image, row, lead = (str(row_id).split("_") + ["?", "?"])[:3]
    return f"image {image}, lead {lead}, row {row}"


def write_submission(path: str | Path, preds: Mapping[str, Mapping[str, np.ndarray]],
                     lead_table: pd.DataFrame) -> pd.DataFrame:
    """Validate, then write parquet (or csv when the path ends in .csv)."""
    sub = build_submission(preds, lead_table)
    write_table(path, sub, index=False)
    return sub


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a submission or solution from parquet or csv, ids as strings."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    df = pd.read_csv(path, dtype={"id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
    df["id"] = df["id"].astype(str)
    return df
