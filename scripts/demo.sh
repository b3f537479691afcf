#!/usr/bin/env bash
# The project's main job on embedded data: synthesize a small competition, predict it, score it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
.venv/bin/python -m data.synth out="$OUT/synth" n_records="${N_RECORDS:-8}" seed=0
.venv/bin/python -m data.synth.contact_sheet "$(ls -d "$OUT"/synth/train/*/ | head -1)" out="$OUT/contact_sheet.png"
# the two floors without weights: 0 mV, then the classical digitizer (ink darkness, no learning), both scored
.venv/bin/python -m inference.baseline data_dir="$OUT/synth" method=zero out="$OUT/submission_zero.parquet"
.venv/bin/python -m inference.baseline data_dir="$OUT/synth" method=classical out="$OUT/submission.parquet"
# With trained checkpoints (CHECKPOINTS=s0.pt,s1.pt,s2.pt), the same test split through the pipeline, scored.
if [ -n "${CHECKPOINTS:-}" ]; then
  .venv/bin/python -m inference data_dir="$OUT/synth" checkpoints="[$CHECKPOINTS]" out="$OUT/submission_pipeline.parquet"
fi
