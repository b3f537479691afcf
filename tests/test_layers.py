"""The layers stack: data -> engine -> pagekit -> stage0 -> stage1 -> stage2 -> inference -> entry points, every
import pointing down, no import circle, and inference that loads no part of the training stack."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["data", "engine", "pagekit", "stage0_keypoints", "stage1_rectify", "stage2_segment", "inference"]
TOP = len(LAYERS)                      # train.py, evaluate.py, scripts/: entry points above everything


def _modules() -> dict[str, Path]:
    files = [p for pkg in LAYERS for p in (ROOT / pkg).rglob("*.py")]
    files += list(ROOT.glob("*.py")) + list((ROOT / "scripts").glob("*.py"))
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in files}


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    if top in LAYERS:
        return LAYERS.index(top)
    return TOP if top in ("train", "evaluate", "scripts") else None


def _imports(path: Path, module: str = "") -> set[str]:
    """Project modules imported anywhere in the file (functions included); relative imports are resolved
    against ``module``, the file's own dotted name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:                                             # from . import x / from ..pkg import y
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base:
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}      # `from pkg import module`
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {i for i in _imports(p, m) if i in mods and i != m} for m, p in mods.items()}


def test_every_import_points_down_the_layers():
    upward = [(m, i) for m, deps in _graph().items() for i in deps if _layer(i) > _layer(m)]
    assert not upward, "imports pointing up the layers: " + ", ".join(f"{m} -> {i}" for m, i in upward)


def test_no_import_circle():
    graph, state, circles = _graph(), {}, []

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                circles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The checks above can fail: a stage importing inference is found."""
    bad = tmp_path / "m.py"
    bad.write_text("from inference.pipeline import Digitizer\nimport stage2_segment.predict\n")
    assert {"inference.pipeline", "stage2_segment.predict"} <= _imports(bad)
    relative = tmp_path / "m2.py"                                        # as if it were stage1_rectify/task.py
    relative.write_text("from ..inference import pipeline\nfrom . import predict\nfrom .targets import x\n")
    assert {"inference.pipeline", "stage1_rectify.predict", "stage1_rectify.targets"} <= \
        _imports(relative, "stage1_rectify.task")
    assert _layer("inference.pipeline") > _layer("stage1_rectify.rectifier")


def test_inference_loads_no_training_stack(smoke_runs):
    """A checkpoint loaded and an image digitized in a fresh interpreter: no training loop, dataset, task module,
    cache, Hydra or augmentation library gets imported."""
    image = next((smoke_runs["data"] / "train").glob("*/*-0003.png"))
    ckpts = [str(smoke_runs[s]) for s in (0, 1, 2)]
    code = (f"import sys\nfrom inference.pipeline import Digitizer\n"
            f"Digitizer({ckpts!r}, device='cpu').digitize({str(image)!r}, 500)\n"
            "print('\\n'.join(sorted(sys.modules)))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = set(res.stdout.split())
    assert "stage2_segment.predict" in loaded and "pagekit.registry" in loaded      # it did run the pipeline
    ours = {m for m in loaded if m.split(".")[0] in LAYERS}
    training = {m for m in ours if m in ("engine.loop", "engine.cache", "engine.data", "engine.stages")
                or m.endswith((".dataset", ".task", ".losses"))}
    training |= {m for m in loaded if m.split(".")[0] in ("hydra", "albumentations")}
    assert not training, f"inference imported the training stack: {sorted(training)}"
