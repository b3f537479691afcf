#!/usr/bin/env bash
# The project's main job on embedded data: synthesize a small competition, digitize it, score it per image type.
# With weights (weights/*.pt as shipped, or CHECKPOINTS=s0.pt,s1.pt,s2.pt) the three-stage pipeline writes
# submission.parquet; without any, the classical digitizer does.  The last line is `score_db <value>`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
PY=.venv/bin/python
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} WANDB_MODE=${WANDB_MODE:-disabled}
$PY -m data.synth out="$OUT/synth" n_records="${N_RECORDS:-8}" n_test="${N_TEST:-10}" seed=0
$PY -m data.synth.contact_sheet "$(ls -d "$OUT"/synth/train/*/ | head -1)" out="$OUT/contact_sheet.png"
# the two floors every model must beat: 0 mV, then the classical digitizer (ink darkness, no learning), both scored
$PY -m inference.baseline data_dir="$OUT/synth" method=zero out="$OUT/submission_zero.parquet"
if [ -z "${CHECKPOINTS:-}" ] && ! ls weights/*.pt >/dev/null 2>&1; then
  echo "no weights in weights/ and no CHECKPOINTS=...: the classical digitizer writes the submission"
  $PY -m inference.baseline data_dir="$OUT/synth" method=classical out="$OUT/submission.parquet"
  exit 0
fi
$PY -m inference.baseline data_dir="$OUT/synth" method=classical out="$OUT/submission_classical.parquet"
CK="checkpoints=[${CHECKPOINTS:-}]"
# pictures: input | rectified page with the canonical grid, digitized leads over the truth (train images)
$PY scripts/demo_figure.py data_dir="$OUT/synth" "$CK" out="$OUT/figures"
# a researcher's folder: the committed example scans -> CSV + picture (+ WFDB) each, and summary.csv
$PY -m inference.digitize examples out="$OUT/examples" wfdb=true "$CK"
# the submission of the test split, scored per type (last line: score_db)
$PY -m inference data_dir="$OUT/synth" "$CK" out="$OUT/submission.parquet"
