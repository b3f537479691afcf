"""Seedable, composable image distortions that keep track of where every canonical point goes.

Two kinds of step:
- geometric (``Geo``): knows ``backward`` (output px -> input px, for ``cv2.remap``) and ``forward`` (input px ->
  output px, for labels).  Consecutive geometric steps are folded into ONE remap of the image, so a chain of warps
  blurs the page once, while the tracked points go through each step exactly.
- photometric (``Photo``): changes pixels only.

Every step is a dataclass whose fields are its parameters, drawn from a numpy Generator by ``sample(rng, ...)``,
so a recipe is reproducible from its seed and can be written into the label file as plain JSON.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

Size = tuple[int, int]  # (width, height)


# ---- geometric steps -------------------------------------------------------------------------------------------
class Geo:
    background: tuple | None = None  # BGR fill where the output sees nothing of the input

    def out_size(self, size: Size) -> Size:
        return size

    def backward(self, pts: np.ndarray, size: Size) -> np.ndarray:
        raise NotImplementedError

    def forward(self, pts: np.ndarray, size: Size) -> np.ndarray:
        """Invert ``backward`` by fixed-point iteration; exact steps override this."""
        out = pts.copy()
        for _ in range(30):
            err = pts - self.backward(out, size)
            out += err
            if np.abs(err).max(initial=0) < 1e-4:
                break
        return out


@dataclass
class Homography(Geo):
    """p_out ~ H p_in (also the affine 'scanner' placement)."""
    H: list
    size: Size
    background: tuple | None = None

    def out_size(self, size):
        return tuple(self.size)

    def forward(self, pts, size):
        return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), np.asarray(self.H)).reshape(-1, 2)

    def backward(self, pts, size):
        Hi = np.linalg.inv(np.asarray(self.H))
        return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), Hi).reshape(-1, 2)

    @classmethod
    def scan(cls, rng, size: Size, out: Size, max_rot=1.5, max_shift=20, scale=(0.98, 1.02), background=None):
        """Small rotation / scale / shift of a page lying on a flatbed (out may change the aspect, e.g. 1652 high)."""
        w, h = size
        sx, sy = out[0] / w, out[1] / h
        a = np.deg2rad(rng.uniform(-max_rot, max_rot))
        s = rng.uniform(*scale)
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s
        c = np.array([w / 2, h / 2])
        A = np.eye(3)
        A[:2, :2] = np.diag([sx, sy]) @ R
        A[:2, 2] = np.array([sx, sy]) * (c - R @ c) + rng.uniform(-max_shift, max_shift, 2)
        return cls(A.tolist(), tuple(out), background)

    @classmethod
    def place(cls, rng, size: Size, out: Size, fill=(0.55, 0.9), jitter=0.06, background=None):
        """Perspective placement of the page inside a photo (or a screen): random scale, position and tilt."""
        w, h = size
        W, H = out
        f = rng.uniform(*fill)
        s = min(W / w, H / h) * f
        cw, ch = w * s, h * s
        ox, oy = rng.uniform(0, W - cw), rng.uniform(0, H - ch)
        dst = np.array([[ox, oy], [ox + cw, oy], [ox + cw, oy + ch], [ox, oy + ch]])
        dst += rng.uniform(-jitter, jitter, (4, 2)) * np.array([cw, ch])
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        Hm = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
        return cls(Hm.tolist(), tuple(out), background)


@dataclass
class Radial(Geo):
    """Lens distortion: p_in = c + (p_out - c)(1 + k1 r^2 + k2 r^4), r normalised by the half diagonal."""
    k1: float
    k2: float = 0.0

    def backward(self, pts, size):
        c = np.array(size, dtype=np.float64) / 2
        d = pts - c
        r2 = (d ** 2).sum(1, keepdims=True) / (c ** 2).sum()
        return c + d * (1 + self.k1 * r2 + self.k2 * r2 ** 2)

    @classmethod
    def sample(cls, rng):
        return cls(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.02, 0.02)))


@dataclass
class Creases(Geo):
    """Paper creases and curl: p_in = p_out + D(p_out).

    Each crease is a line (point, angle) across which the paper shifts by up to ``amp`` px with a smooth
    tanh profile of half-width ``width``; a low-frequency bend adds page curl.
    """
    lines: list  # [x, y, angle_rad, amp, width]
    curl: list   # [amp_x, amp_y, freq_x, freq_y, phase]

    def displacement(self, pts):
        d = np.zeros_like(pts)
        for x0, y0, ang, amp, width in self.lines:
            n = np.array([-np.sin(ang), np.cos(ang)])         # unit normal of the crease line
            s = (pts - [x0, y0]) @ n
            d += amp * np.tanh(s / width)[:, None] * n
        ax, ay, fx, fy, ph = self.curl
        d[:, 0] += ax * np.sin(fx * pts[:, 1] + ph)
        d[:, 1] += ay * np.sin(fy * pts[:, 0] + ph)
        return d

    def backward(self, pts, size):
        return pts + self.displacement(pts)

    def shading(self, size: Size) -> np.ndarray:
        """Multiplicative light/dark ridge along each crease (what makes a crease visible)."""
        w, h = size
        yy, xx = np.mgrid[0:h:4, 0:w:4].astype(np.float32)
        pts = np.stack([xx.ravel(), yy.ravel()], -1)
        shade = np.ones(len(pts), np.float32)
        for x0, y0, ang, amp, width in self.lines:
            n = np.array([-np.sin(ang), np.cos(ang)])
            s = (pts - [x0, y0]) @ n
            shade *= 1 - 0.25 * np.sign(amp) * np.exp(-(s / (0.6 * width)) ** 2) * np.sign(s)
        return cv2.resize(shade.reshape(xx.shape), (w, h), interpolation=cv2.INTER_LINEAR)

    @classmethod
    def sample(cls, rng, size: Size, n=(2, 8), amp=(0.5, 3.0)):
        w, h = size
        lines = []
        for _ in range(int(rng.integers(n[0], n[1] + 1))):
            ang = float(rng.uniform(0, np.pi)) if rng.random() < 0.5 else float(rng.choice([0, np.pi / 2]))
            lines.append([float(rng.uniform(0, w)), float(rng.uniform(0, h)), ang,
                          float(rng.uniform(*amp) * rng.choice([-1, 1])), float(rng.uniform(30, 80))])
        curl = [float(rng.uniform(0, 4)), float(rng.uniform(0, 6)), float(rng.uniform(0.5, 2) * np.pi / h),
                float(rng.uniform(0.5, 2) * np.pi / w), float(rng.uniform(0, 2 * np.pi))]
        return cls(lines, curl)


@dataclass
class Rot90(Geo):
    """k quarter turns clockwise (the photo's orientation)."""
    k: int

    def out_size(self, size):
        return size if self.k % 2 == 0 else (size[1], size[0])

    def forward(self, pts, size):
        w, h = size[0] - 1, size[1] - 1  # pixel centres sit at integers
        x, y = pts[:, 0], pts[:, 1]
        k = self.k % 4
        res = {0: (x, y), 1: (h - y, x), 2: (w - x, h - y), 3: (y, w - x)}[k]
        return np.stack(res, -1)

    def backward(self, pts, size):
        return Rot90(-self.k % 4).forward(pts, self.out_size(size))


# ---- photometric steps -----------------------------------------------------------------------------------------
class Photo:
    def __call__(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


def _mul(img: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """uint8 image times a float (H, W) gain, saturated: OpenCV does in one pass what numpy needs three for."""
    g = gain.astype(np.float32)
    return cv2.multiply(img, cv2.merge([g] * img.shape[2]) if img.ndim == 3 else g, dtype=cv2.CV_8U)


@dataclass
class Tint(Photo):
    """Paper tone / colour cast: per-channel gain and offset."""
    gain: list
    offset: float = 0.0

    def __call__(self, img):
        out = cv2.multiply(img, tuple(float(g) for g in self.gain) + (1.0,) * (4 - len(self.gain)))
        return cv2.add(out, (float(self.offset),) * 4)


@dataclass
class Noise(Photo):
    sigma: float
    seed: int

    def __call__(self, img):
        n = np.empty(img.shape[:2], np.float32)
        cv2.setRNGSeed(int(self.seed))
        cv2.randn(n, 0.0, float(self.sigma))
        return cv2.add(img, cv2.merge([n] * img.shape[2]) if img.ndim == 3 else n, dtype=cv2.CV_8U)


@dataclass
class Blur(Photo):
    sigma: float

    def __call__(self, img):
        return cv2.GaussianBlur(img, (0, 0), self.sigma) if self.sigma > 0.05 else img


@dataclass
class Jpeg(Photo):
    quality: int

    def __call__(self, img):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(self.quality)])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


@dataclass
class Gray(Photo):
    """B/W scan: luminance, contrast stretched (gamma) and optionally hard-thresholded like a fax scanner."""
    gamma: float = 1.0
    threshold: float = 0.0

    def __call__(self, img):
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
        g = g ** self.gamma
        if self.threshold:
            g = np.where(g < self.threshold, g * 0.3, np.minimum(1, g * 1.05))
        return cv2.cvtColor((g * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


@dataclass
class Lighting(Photo):
    """Uneven light: linear gradient between two gains times a radial vignette, plus one soft shadow polygon."""
    angle: float
    lo: float
    hi: float
    vignette: float
    shadow: list = field(default_factory=list)  # polygon in relative coords
    shadow_depth: float = 0.0

    def __call__(self, img):
        h, w = img.shape[:2]
        sh, sw = max(h // 8, 1), max(w // 8, 1)
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        u = (np.cos(self.angle) * (xx / sw - 0.5) + np.sin(self.angle) * (yy / sh - 0.5)) + 0.5
        gain = self.lo + (self.hi - self.lo) * np.clip(u, 0, 1)
        r2 = ((xx / sw - 0.5) ** 2 + (yy / sh - 0.5) ** 2) / 0.5
        gain *= 1 - self.vignette * r2
        if self.shadow:
            m = np.zeros((sh, sw), np.float32)
            cv2.fillPoly(m, [np.round(np.asarray(self.shadow) * [sw, sh]).astype(np.int32)], 1.0)
            m = cv2.GaussianBlur(m, (0, 0), max(sw, sh) / 30)
            gain *= 1 - self.shadow_depth * m
        return _mul(img, cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR))

    @classmethod
    def sample(cls, rng, shadow_p=0.5):
        shadow = []
        if rng.random() < shadow_p:
            c = rng.uniform(0.1, 0.9, 2)
            shadow = (c + rng.uniform(-0.35, 0.35, (5, 2))).tolist()
        return cls(float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.6, 0.85)), float(rng.uniform(0.95, 1.1)),
                   float(rng.uniform(0.05, 0.25)), shadow, float(rng.uniform(0.15, 0.4)))


@dataclass
class Blotches(Photo):
    """Stains (brown, with a darker tide-line) or mould (green-black speckled clusters)."""
    kind: str  # "stain" | "mould"
    seed: int
    n: int

    def __call__(self, img):
        rng = _rng(self.seed)
        h, w = img.shape[:2]
        out = img.astype(np.float32)
        for _ in range(self.n):
            r = rng.uniform(0.03, 0.15) * min(w, h)
            c = rng.uniform([0, 0], [w, h])
            m = np.zeros((h, w), np.float32)
            if self.kind == "stain":
                pts = c + r * (1 + 0.3 * rng.standard_normal((24, 1))) * np.stack(
                    [np.cos(np.linspace(0, 2 * np.pi, 24)), np.sin(np.linspace(0, 2 * np.pi, 24))], -1)
                cv2.fillPoly(m, [pts.astype(np.int32)], 1.0)
                m = cv2.GaussianBlur(m, (0, 0), r / 8)
                rim = np.clip(m * (1 - m) * 4, 0, 1)
                colour = np.array([60, 120, 170], np.float32) * rng.uniform(0.7, 1.1)  # tea/coffee brown (BGR)
                alpha = (rng.uniform(0.25, 0.5) * m + 0.3 * rim)[..., None]
            else:
                k = int(r * r / 20)
                spots = c + rng.normal(0, r / 2, (k, 2))
                for (x, y), s in zip(spots.astype(int), rng.uniform(1, 4, k)):
                    cv2.circle(m, (int(x), int(y)), int(s), 1.0, -1)
                m = cv2.GaussianBlur(m, (0, 0), 1.5)
                colour = np.array([40, 70, 50], np.float32) * rng.uniform(0.5, 1.2)    # dark green-grey
                alpha = (np.clip(m, 0, 1) * rng.uniform(0.6, 0.9))[..., None]
            out = out * (1 - alpha) + colour * alpha
        return np.clip(out, 0, 255).astype(np.uint8)


@dataclass
class Damage(Photo):
    """Heavy damage on the paper: torn-off corners and edge tears (filled with what lies behind), fold lines."""
    seed: int
    behind: tuple

    def __call__(self, img):
        rng = _rng(self.seed)
        h, w = img.shape[:2]
        out = img.copy()
        for _ in range(int(rng.integers(1, 4))):  # missing corners
            cx, cy = rng.choice([0, w]), rng.choice([0, h])
            a, b = rng.uniform(0.05, 0.2) * w, rng.uniform(0.05, 0.2) * h
            tri = np.array([[cx, cy], [abs(cx - a), cy], [cx, abs(cy - b)]], np.int32)
            jag = np.array([[abs(cx - a * t), abs(cy - b * (1 - t))] for t in np.linspace(0, 1, 12)])
            jag += rng.normal(0, 6, jag.shape)
            cv2.fillPoly(out, [np.vstack([tri[:1], jag]).astype(np.int32)], self.behind)
        for _ in range(int(rng.integers(1, 3))):  # tears from an edge
            x = rng.uniform(0.1, 0.9) * w
            depth = rng.uniform(0.05, 0.25) * h
            ys = np.linspace(0, depth, 10)
            left = np.stack([x + rng.normal(0, 5, 10) - np.linspace(8, 1, 10), ys], -1)
            right = np.stack([x + rng.normal(0, 5, 10) + np.linspace(8, 1, 10), ys], -1)[::-1]
            cv2.fillPoly(out, [np.vstack([left, right]).astype(np.int32)], self.behind)
        for _ in range(int(rng.integers(1, 4))):  # fold lines: thin dark/light pair
            y = int(rng.uniform(0.1, 0.9) * h)
            cv2.line(out, (0, y), (w, y + int(rng.normal(0, 20))), (90, 90, 90), 2, cv2.LINE_AA)
        return out


@dataclass
class Screen(Photo):
    """Photo of a laptop screen: moire from the pixel grid beating with the sensor, glare, bluish cast."""
    freq: float
    angle: float
    amp: float
    glare: list  # [cx, cy, radius, strength] relative

    def __call__(self, img):
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        phase = self.freq * (np.cos(self.angle) * xx + np.sin(self.angle) * yy)
        moire = 1 + self.amp * np.sin(phase) * np.sin(0.93 * phase + 0.002 * yy)
        cx, cy, r, s = self.glare
        g = s * np.exp(-(((xx / w - cx) ** 2 + (yy / h - cy) ** 2) / r ** 2))
        out = img.astype(np.float32) * moire[..., None] * np.array([1.08, 1.0, 0.9], np.float32)
        return np.clip(out + 255 * g[..., None], 0, 255).astype(np.uint8)

    @classmethod
    def sample(cls, rng):
        return cls(float(rng.uniform(0.3, 1.2)), float(rng.uniform(0, np.pi)), float(rng.uniform(0.04, 0.12)),
                   [float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.1, 0.3)),
                    float(rng.uniform(0.2, 0.5))])


@dataclass
class Shade(Photo):
    """Multiply by the crease shading of a ``Creases`` step (applied after it, in the same frame)."""
    creases: Creases

    def __call__(self, img):
        return _mul(img, self.creases.shading((img.shape[1], img.shape[0])))


# ---- running a recipe ------------------------------------------------------------------------------------------
def _background(size: Size, colour, seed: int) -> np.ndarray:
    """A table/cloth-like textured background behind the page."""
    w, h = size
    rng = _rng(seed)
    small = rng.normal(0, 1, (max(h // 32, 2), max(w // 32, 2))).astype(np.float32)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    flat = np.empty((h, w, 3), np.uint8)
    flat[:] = np.asarray(colour, np.uint8)
    return _mul(flat, 1 + 0.12 * tex)


def _remap(img: np.ndarray, steps: list[Geo], sizes: list[Size], seed: int) -> np.ndarray:
    """One cv2.remap for a run of geometric steps: chain their backward maps from the output grid."""
    W, H = sizes[-1]
    stride = 4  # the maps are smooth: evaluate on a coarse grid and upsample
    gy, gx = np.mgrid[0:H + stride:stride, 0:W + stride:stride].astype(np.float64)
    pts = np.stack([gx.ravel(), gy.ravel()], -1)
    for step, size in zip(reversed(steps), reversed(sizes[:-1])):
        pts = step.backward(pts, size)
    mx = _upsample(pts[:, 0].reshape(gx.shape), stride, (W, H))
    my = _upsample(pts[:, 1].reshape(gx.shape), stride, (W, H))
    background = next((s.background for s in reversed(steps) if s.background is not None), None)
    if background is None:
        return cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    out = cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    mask = cv2.remap(np.ones(img.shape[:2], np.float32), mx, my, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    return cv2.blendLinear(out, _background((W, H), background, seed), mask, 1 - mask)


def _upsample(coarse: np.ndarray, stride: int, size: Size) -> np.ndarray:
    """Bilinear interpolation of a grid whose node n sits at pixel n*stride, to every pixel of ``size``."""
    M = np.array([[1 / stride, 0, 0], [0, 1 / stride, 0]], np.float64)  # dst(x, y) = src(x/stride, y/stride)
    return cv2.warpAffine(coarse.astype(np.float32), M, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def run(img: np.ndarray, steps: list, tracked: dict[str, np.ndarray], seed: int = 0):
    """Apply a recipe to an image and move the tracked canonical points along.  Returns (image, tracked)."""
    tracked = {k: np.asarray(v, dtype=np.float64).copy() for k, v in tracked.items()}
    size: Size = (img.shape[1], img.shape[0])
    run_geo: list[Geo] = []
    run_sizes: list[Size] = [size]
    for step in steps + [None]:
        if isinstance(step, Geo):
            for k in tracked:
                tracked[k] = step.forward(tracked[k], run_sizes[-1])
            run_geo.append(step)
            run_sizes.append(step.out_size(run_sizes[-1]))
            continue
        if run_geo:
            img = _remap(img, run_geo, run_sizes, seed)
            run_geo, run_sizes = [], [run_sizes[-1]]
        if step is not None:
            img = step(img)
    return img, tracked


def describe(steps: list) -> list[dict]:
    """JSON-ready record of a recipe: step names and parameters."""
    return [{"step": type(s).__name__, **{k: v for k, v in asdict(s).items() if k != "creases"}} for s in steps]
