"""Stage 2 for inference: rectified pages in, per-row trace probabilities out; several models (an ensemble) are
averaged in probability space with weights, each optionally with horizontal-flip TTA.

    from pagekit.registry import load_model
    model, cfg = load_model("runs/stage2/.../best.pt")
    probs = predict([model], cfg["model"], [rect.page])       # (1, 4, H, W), page at cfg["model"]["page_k"]
    leads = pagekit.extract.extract_leads(probs[0], lengths, fs, cfg["model"]["page_k"])
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from data import geometry as G
from pagekit.image import as_bgr, pad_page, padded_page_size, page_coords


@torch.no_grad()
def forward_probs(model, image: torch.Tensor, coords: torch.Tensor, tta_flip: bool = False,
                  out: dict | None = None, baselines=None) -> torch.Tensor:
    """(B, 3, H, W) uint8 + (B, 2, H, W) -> (B, R, H, W) probabilities, a channel per row (``out``: the model's
    output on this batch, when already computed; ``baselines``: the rows of a layout other than the competition's,
    series models only); the flip mirrors pixels and coordinates together (each pixel keeps its page position, as
    in training) and the output is mirrored back."""
    out = out if out is not None else model({"image": image, "coords": coords, "baselines": baselines})
    prob = torch.sigmoid(out["logits"].float())
    if tta_flip:
        flipped = model({"image": image.flip(-1), "coords": coords.flip(-1), "baselines": baselines}
                        )["logits"].float()
        prob = 0.5 * (prob + torch.sigmoid(flipped).flip(-1))
    return prob


@torch.no_grad()
def predict(models: list, model_cfg: dict, pages: list[np.ndarray], weights: list[float] | None = None,
            tta_flip: bool = False, device=None, batch_size: int = 2, baselines=None,
            columns: tuple[int, int] | None = None) -> np.ndarray:
    """BGR pages at scale ``model_cfg["page_k"]`` -> (N, R, h, w) float32 probabilities of the unpadded page, a
    channel per row: the competition's four, or one per ``baselines`` (canonical px).  ``columns`` (x0, x1) at page
    scale: only those columns are read (a multiple of the network's stride wide; w = x1 - x0)."""
    k = model_cfg["page_k"]
    w, h = G.page_size(k)
    device = device or next(models[0].parameters()).device
    weights = np.asarray(weights if weights is not None else [1.0] * len(models), np.float64)
    weights = weights / weights.sum()
    coords = torch.from_numpy(page_coords(padded_page_size(k), k))
    x0, x1 = columns or (0, coords.shape[2])
    coords = coords[..., x0:x1]
    n_rows = len(baselines) if baselines is not None else G.N_ROWS
    out = np.zeros((len(pages), n_rows, h, min(w, x1) - x0), np.float32)
    for a in range(0, len(pages), batch_size):
        chunk = [pad_page(cv2.cvtColor(as_bgr(p), cv2.COLOR_BGR2RGB), k)[:, x0:x1] for p in pages[a:a + batch_size]]
        image = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).to(device)
        c = coords[None].expand(len(chunk), -1, -1, -1).to(device)
        for model, wt in zip(models, weights):
            model.eval()
            p = forward_probs(model, image, c, tta_flip, baselines=baselines)
            out[a:a + len(chunk)] += wt * p[..., :h, :out.shape[3]].cpu().numpy()
    return out
