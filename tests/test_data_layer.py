import numpy as np
import pandas as pd
import pytest

from data.folds import assign_folds
from data.geometry import LEADS, lead_sample_window
from data.submission import SubmissionError, build_submission, validate_submission, write_submission
from pagekit.metric import score


def _lead_table(fs=256, ids=("11", "22")):
    rows = [{"id": i, "lead": lead, "fs": fs, "number_of_rows": int(np.subtract(*lead_sample_window(lead, fs)[::-1]))}
            for i in ids for lead in LEADS]
    return pd.DataFrame(rows)


def _preds(table, fill=0.1):
    return {i: {r.lead: np.full(r.number_of_rows, fill) for r in g.itertuples()} for i, g in table.groupby("id")}


def test_submission_has_exactly_the_rows_of_the_lead_table(tmp_path):
    table = _lead_table()
    sub = write_submission(tmp_path / "submission.parquet", _preds(table), table)
    assert len(sub) == table["number_of_rows"].sum() == 2 * (2560 + 11 * 640)
    back = pd.read_parquet(tmp_path / "submission.parquet")
    assert list(back.columns) == ["id", "value"] and back["id"].is_unique
    assert back["id"].iloc[0] == "11_0_I"


@pytest.mark.parametrize("fs", [256, 1025])
def test_lengths_follow_number_of_rows(fs):
    table = _lead_table(fs, ids=("7",))
    assert table.set_index("lead").loc["II", "number_of_rows"] == 10 * fs
    assert build_submission(_preds(table), table)["id"].str.endswith("_II").sum() == 10 * fs


def test_wrong_length_names_image_and_lead():
    table = _lead_table()
    preds = _preds(table)
    preds["22"]["V3"] = preds["22"]["V3"][:-1]
    with pytest.raises(SubmissionError, match=r"image 22, lead V3: 639 values, test.csv wants 640"):
        build_submission(preds, table)


def test_nan_names_image_and_lead():
    table = _lead_table()
    preds = _preds(table)
    preds["11"]["aVL"][5] = np.nan
    with pytest.raises(SubmissionError, match=r"image 11, lead aVL: 1 NaN/inf values \(first at row 5\)"):
        build_submission(preds, table)


def test_validate_catches_missing_duplicate_and_extra_ids():
    table = _lead_table(ids=("11",))
    sub = build_submission(_preds(table), table)
    with pytest.raises(SubmissionError, match="missing"):
        validate_submission(sub.iloc[1:], table)
    with pytest.raises(SubmissionError, match="duplicate id 11_0_I"):
        validate_submission(pd.concat([sub, sub.iloc[:1]]), table)
    extra = pd.concat([sub, pd.DataFrame({"id": ["99_0_I"], "value": [0.0]})])
    with pytest.raises(SubmissionError, match="not in test.csv"):
        validate_submission(extra, table)


def test_every_value_lands_on_its_own_image_lead_and_row(tmp_path):
    """A distinct value per image, lead and row (image*1e5 + lead*1e3 + row) read back from the parquet by its id:
    a lead written reversed, moved by a row or under another lead's name fails."""
    table = _lead_table(fs=250, ids=("11", "22"))
    preds = {i: {r.lead: int(i) * 1e5 + LEADS.index(r.lead) * 1e3 + np.arange(r.number_of_rows)
                 for r in g.itertuples()} for i, g in table.groupby("id")}
    write_submission(tmp_path / "s.parquet", preds, table)
    back = pd.read_parquet(tmp_path / "s.parquet")
    image, row, lead = back["id"].str.split("_", expand=True).T.to_numpy()
    want = image.astype(int) * 1e5 + np.array([LEADS.index(x) for x in lead]) * 1e3 + row.astype(int)
    np.testing.assert_array_equal(back["value"].to_numpy(), want)
    assert set(zip(image, lead)) == {(i, x) for i in ("11", "22") for x in LEADS}
    assert (back.assign(lead=lead).groupby("lead").size() // 2).to_dict() == \
        {x: 2500 if x == "II" else 625 for x in LEADS}


def test_a_written_submission_scores_against_a_solution_built_apart_from_it():
    """The truth's frame is built here from the ids' definition; the submission by build_submission: exact
    values score the cap, one lead's values reversed cost it."""
    table = _lead_table(ids=("11",))
    rng = np.random.default_rng(0)
    truth = {r.lead: np.cumsum(rng.normal(size=r.number_of_rows)) for r in table.itertuples()}
    sol = pd.DataFrame([{"id": f"11_{k}_{lead}", "fs": 256, "value": v[k]}
                        for lead, v in truth.items() for k in range(len(v))])
    assert round(score(sol, build_submission({"11": truth}, table)), 4) == 25.8433
    flipped = {**truth, "V3": truth["V3"][::-1]}
    assert score(sol, build_submission({"11": flipped}, table)) < 20


def test_folds_deterministic_record_level_and_balanced_over_fs():
    meta = pd.DataFrame({"id": [str(1000 + i) for i in range(60)], "fs": [250, 500, 1025] * 20})
    a = assign_folds(meta, 5)
    b = assign_folds(meta.sample(frac=1, random_state=1), 5)
    pd.testing.assert_frame_equal(a, b)                      # independent of row order
    assert a["id"].is_unique
    per = a.groupby(["fs", "fold"]).size().unstack()
    assert (per.max(axis=1) - per.min(axis=1) <= 1).all()    # every fold gets its share of every fs


def test_the_command_line_parser_keeps_spelling_converts_by_type_and_names_mistakes():
    from dataclasses import dataclass, field

    import pytest

    from data import cli

    @dataclass
    class Options:
        data_dir: str
        types: list[str] = field(default_factory=list)
        weights: list[float] = field(default_factory=list)
        limit: int | None = None
        tta: bool = False
        extract: dict = field(default_factory=dict)

    opts = cli.parse(Options, ["d", "types=0001,0005", "weights=[1,0.5]", "limit=null", "tta=yes",
                               "extract.band_mv=2"], "usage", positional=("data_dir",), open_keys={"extract": None})
    assert opts == Options("d", ["0001", "0005"], [1.0, 0.5], None, True, {"band_mv": 2})   # 0001 stays a string
    for argv, message in ((["data_dir=d", "limt=3"], "unknown option 'limt' \\(did you mean 'limit'\\?\\)"),
                          (["data_dir=d", "tta=maybe"], "option tta='maybe': expected true or false"),
                          (["types=1"], "missing data_dir"), (["d", "e"], "unexpected argument 'e'")):
        with pytest.raises(SystemExit, match=message):
            cli.parse(Options, argv, "usage", positional=("data_dir",))


def test_every_rejection_names_the_image_lead_and_row(tmp_path):
    table = _lead_table(ids=("11",))
    sub = build_submission(_preds(table), table)
    i = int(np.flatnonzero(sub["id"] == "11_5_aVL")[0])
    for bad in (np.nan, "abc"):
        broken = sub.assign(value=sub["value"].astype(object).where(sub.index != i, bad))
        with pytest.raises(SubmissionError, match=r"^1 NaN/inf values, first 11_5_aVL \(image 11, lead aVL, row 5\)"):
            validate_submission(broken, table)
    with pytest.raises(SubmissionError, match=r"duplicate id 11_0_I \(image 11, lead I, row 0\); 1 duplicates"):
        validate_submission(pd.concat([sub, sub.iloc[:1]]), table)
    with pytest.raises(SubmissionError, match=r"^1 ids missing, e.g. 11_0_I \(image 11, lead I, row 0\)"):
        validate_submission(sub.iloc[1:], table)
    with pytest.raises(SubmissionError, match=r"^1 ids not in test.csv, e.g. 99_7 \(image 99, lead \?, row 7\)"):
        validate_submission(pd.concat([sub, pd.DataFrame({"id": ["99_7"], "value": [0.0]})]), table)
    with pytest.raises(SubmissionError, match=r"columns must be \['id', 'value'\], got \['value', 'id'\]"):
        validate_submission(sub[["value", "id"]], table)
    with pytest.raises(SubmissionError, match=r"^image 22: no prediction"):
        build_submission(_preds(table), _lead_table(ids=("22",)))
    with pytest.raises(SubmissionError, match=r"^image 11, lead V6: no prediction"):
        build_submission({"11": {k: v for k, v in _preds(table)["11"].items() if k != "V6"}}, table)


def test_a_csv_submission_has_exactly_the_two_columns_and_an_empty_table_an_empty_submission(tmp_path):
    table = _lead_table(ids=("11",))
    write_submission(tmp_path / "s.csv", _preds(table), table)
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == ["id", "value"]
    empty = build_submission({}, table.iloc[:0])
    assert len(empty) == 0 and list(empty.columns) == ["id", "value"]
