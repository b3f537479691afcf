"""Training checkpoints -> the files that ship in weights/: per stage the fp16 weights, the resolved config and a
model card (how it was trained, on what, and what it scores):

    python scripts/export_weights.py CKPT... [out=weights] [transfer=transfer.csv] [machine="2-core CPU"]
                                     [stageN.model.KEY=VALUE ...]

CKPT: a best.pt of ``python train.py`` (its run folder's .hydra/overrides.yaml gives the command, log.jsonl the
training time).  ``transfer``: the table of ``scripts/eval_transfer.py ... out=transfer.csv`` measured with these
checkpoints, whose columns of each stage go into its card.  ``stageN.model.KEY=VALUE``: a decoding setting changed
in the shipped config (e.g. ``stage1.model.smoothing=1000``), named in the card.  Writes ``OUT/stage{N}.pt``,
``.yaml`` and ``.md``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import yaml
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.files import write_text  # noqa: E402
from engine.data import dir_seed  # noqa: E402
from pagekit.registry import override  # noqa: E402
from pagekit.weights import export  # noqa: E402

ROLE = {
    0: "finds the page and its orientation: 13 keypoints (page corners and lead-name anchors) and a quarter-turn "
       "class, from which the page homography follows",
    1: "finds the printed grid's lattice on the page that stage 0 normalised, and fits the smooth warp that maps it "
       "to the canonical page (one remap of the raw image)",
    2: "gives each of the four printed rows a trace probability over the rectified page; the Viterbi extraction "
       "reads the leads from them",
}
# eval_transfer.py's columns that speak about each stage
TRANSFER = {0: ["kp_median_mm", "s0_fail"], 1: ["rect_median_mm", "rect_p95_mm"],
            2: ["s2_exact_db", "s2_overlap_db", "s2_other_db", "e2e_db", "classical_db"]}


@dataclass
class Options:
    checkpoints: list[str] = field(default_factory=list)
    out: str = "weights"
    transfer: str | None = None
    machine: str = "2-core CPU (no GPU)"
    overrides: dict = field(default_factory=dict)


def run_facts(ckpt: Path) -> tuple[str, float | None]:
    """(the training command, training minutes) from the run folder beside a checkpoint."""
    overrides = ckpt.parent / ".hydra" / "overrides.yaml"
    args = yaml.safe_load(overrides.read_text()) if overrides.is_file() else []
    command = "python train.py " + " ".join(a for a in args if not a.startswith(("hydra.", "trainer.progress")))
    log = ckpt.parent / "log.jsonl"
    minutes = None
    if log.is_file():
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        minutes = sum(r.get("epoch_s", 0) for r in rows) / 60
    return command, minutes


def started_from(init_from: str | None, machine: str) -> list[str]:
    """The card's line for a fine-tuned run: the run it started from."""
    if not init_from:
        return []
    if not (Path(init_from).parent / ".hydra").is_dir():     # exported weights: no run folder beside them
        return [f"- Started from the exported weights `{init_from}` of that time, with a new schedule (how they were "
                f"trained: the card they shipped with, in this file's git history)"]
    command, minutes = run_facts(Path(init_from))
    return [f"- Started from the weights of `{init_from}` (`{command}`, {minutes or 0:.0f} min on {machine}), "
            f"with a new schedule"]


def card(stage: int, slim: dict, ckpt: Path, pt: Path, transfer: pd.DataFrame | None, machine: str,
         changed: dict | None = None) -> str:
    cfg, m = slim["config"], slim["config"]["model"]
    n_params = sum(v.numel() for v in slim["model"].values())
    command, minutes = run_facts(ckpt)
    gen = cfg["data"].get("generate", {})
    extra = list(cfg["data"].get("extra_train_dirs") or [])
    val = {k[4:]: v for k, v in (slim.get("metrics") or {}).items() if k.startswith("val/")}
    lines = [
        f"# Stage {stage}: `{m['name']}` ({m.get('encoder')})", "",
        f"Stage {stage} {ROLE[stage]}.", "",
        f"- File: `{pt.name}`, {pt.stat().st_size / 2**20:.1f} MiB, {n_params / 1e6:.2f} M parameters in fp16; "
        f"resolved config in `{pt.with_suffix('.yaml').name}` (also inside the .pt)",
        f"- Trained: `{command}`, seed {cfg.get('seed')}, {cfg['trainer']['epochs']} epochs "
        f"(best epoch {(slim.get('best_epoch') or 0) + 1}), "
        + (f"{minutes:.0f} min on {machine}" if minutes else f"on {machine}"),
        f"- Data: synthetic pages only (`python -m data.synth`): {gen.get('n_records')} records x "
        f"{len(gen.get('types') or [])} image types, seed {gen.get('seed')}, signals `{gen.get('source')}`; "
        f"validation = fold {cfg['data'].get('val_fold')} of {cfg['data'].get('n_folds')} (records never trained on)"
        + (f"; training also on every page of {', '.join(f'`{d}`' for d in extra)} (the same settings, "
           f"seed{'s' if len(extra) > 1 else ''} "
           f"{', '.join(str(dir_seed(int(gen.get('seed') or 0), i + 1)) for i in range(len(extra)))}: other records)"
           if extra else ""),
        *started_from(cfg.get("init_from"), machine),
        "- Not trained on any competition image nor on ../shared/eik_dev (validation only).",
        *(["- Changed at export (decoding only, the weights are the run's): "
           + ", ".join(f"`{k}={v}`" for k, v in changed.items())
           + " (the validation table below is the run's own, before the change)"] if changed else []), "",
        "## Own synthetic validation (best epoch)", "",
        "| metric | value |", "|---|---|",
        *[f"| {k} | {v:.4g} |" for k, v in val.items() if isinstance(v, (int, float))], "",
    ]
    cols = [c for c in TRANSFER[stage] if transfer is not None and c in transfer.columns]
    if cols:
        t = transfer.set_index("type")[cols]
        lines += ["## ECG-Image-Kit renders (../shared/eik_dev, `python scripts/eval_transfer.py "
                  "checkpoints=[weights/stage0.pt,weights/stage1.pt,weights/stage2.pt]`)", "",
                  "| type | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
                  *[f"| {i} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for i, row in t.iterrows()], ""]
    return "\n".join(lines)


def main(argv=None) -> list[Path]:
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoints",), rest="overrides")
    out = Path(opts.out)
    with cli.reported():
        transfer = pd.read_csv(opts.transfer, dtype={"type": str}) if opts.transfer else None
        out.mkdir(parents=True, exist_ok=True)
    written = []
    for ckpt in map(Path, opts.checkpoints):
        with cli.reported():
            pt = out / "tmp_export.pt"
            slim = export(ckpt, pt)
        stage = int(slim["config"]["stage"]["id"])
        changed = {k.split(".", 1)[1]: yaml.safe_load(v) if isinstance(v, str) else v
                   for k, v in opts.overrides.items() if k.startswith(f"stage{stage}.")}
        if changed:
            with cli.reported():
                slim["config"] = OmegaConf.to_container(override(OmegaConf.create(slim["config"]), changed,
                                                                 f"checkpoint {ckpt}"))
            torch.save(slim, pt)
        pt = pt.rename(out / f"stage{stage}.pt")
        write_text(pt.with_suffix(".yaml"), yaml.safe_dump(slim["config"], sort_keys=False))
        write_text(pt.with_suffix(".md"), card(stage, slim, ckpt, pt, transfer, opts.machine, changed))
        print(f"wrote {pt} ({pt.stat().st_size / 2**20:.1f} MiB), its .yaml and .md")
        written.append(pt)
    return written


if __name__ == "__main__":
    main()
