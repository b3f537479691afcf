#!/usr/bin/env bash
# The project's main job on embedded data: synthesize a small competition, predict it, score it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
.venv/bin/python -m data.synth out="$OUT/synth" n_records="${N_RECORDS:-8}" seed=0
.venv/bin/python -m data.synth.contact_sheet "$(ls -d "$OUT"/synth/train/*/ | head -1)" out="$OUT/contact_sheet.png"
.venv/bin/python -m inference.baseline data_dir="$OUT/synth" out="$OUT/submission.parquet"
.venv/bin/python -m inference.score "$OUT/submission.parquet" "$OUT/synth/solution.parquet"
