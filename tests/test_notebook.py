"""The Kaggle notebook runs end to end (nbclient) on a synthetic competition and writes the exact submission."""
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from data.submission import expected_ids, read_table

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, params: dict) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "notebooks" / "submission.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())     # as papermill injects them
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def test_the_notebook_writes_the_submission_with_given_weights_and_falls_back_without(smoke_runs, tmp_path,
                                                                                      monkeypatch):
    data = smoke_runs["data"]
    table = pd.read_csv(data / "test.csv", dtype={"id": str})
    ckpts = [str(smoke_runs[s]) for s in (0, 1, 2)]
    nb = _run(tmp_path, {"REPO_DIR": str(ROOT), "COMP_DIR": str(data), "CHECKPOINTS": ckpts, "OUT": "sub.parquet",
                         "DEVICE": "cpu"})
    sub = read_table(tmp_path / "sub.parquet")
    assert pd.Index(sub["id"]).equals(expected_ids(table)) and sub["value"].notna().all()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "checkpoints:" in text and "score_db" in text            # the synthetic set has a solution: scored

    empty = tmp_path / "no_weights"
    empty.mkdir()
    nb = _run(tmp_path, {"REPO_DIR": str(ROOT), "COMP_DIR": str(data), "CHECKPOINTS": [str(empty)],
                         "OUT": "classical.parquet"})
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "falling back to the classical digitizer" in text
    assert pd.Index(read_table(tmp_path / "classical.parquet")["id"]).equals(expected_ids(table))
