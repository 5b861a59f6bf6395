"""`facepad demo`: a small synthetic dataset in the CelebA-Spoof layout, made without any download.

Live faces come from real photos that installed packages ship (scikit-image's astronaut and 100 LFW
faces, matplotlib's Grace Hopper). Spoofs are made from the same faces by simulating CelebA-Spoof's
attack taxonomy: prints (photo, poster, A4: halftone, paper texture, white border, perspective,
faded colour), replays (PC, pad, phone: pixel grid, moire, gamma, bezel) and paper cuts (face and
upper-body masks pasted on another background, region masks with holes). Live and spoof captures
share the same camera, lighting and framing distributions, so a model has to find the medium,
not a shortcut. Every image is drawn from its own seeded generator, so the same seed gives
byte-identical files.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facepad.data.media import add_border, print_medium, screen_medium
from facepad.data.records import CELEBA_SPOOF_TYPES

if TYPE_CHECKING:  # numpy is imported inside functions: `facepad --help` stays fast
    import numpy as np

BOX_FRAME = 224
MARKER = "demo.json"  # parameters of a finished demo, written last
DEMO_ENTRIES = {"Data", "metas", "README.txt", MARKER}
SKIN_TONES = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)]
# backgrounds from skimage.data, with CelebA-Spoof's environment id (1 indoor, 2 outdoor)
BACKGROUNDS = {
    "brick": 1,
    "coffee": 1,
    "chelsea": 1,
    "coins": 1,
    "grass": 2,
    "gravel": 2,
    "rocket": 2,
}
SPOOF_TYPES = [1, 2, 3, 4, 5, 6, 7, 8, 9]  # every CelebA-Spoof type but the 3D mask
# illumination id (1 normal, 2 strong, 3 back, 4 dark) and its probability, for live and spoof alike
ILLUMINATIONS = ([1, 2, 3, 4], [0.55, 0.15, 0.15, 0.15])
# The attack instrument is rendered at this fraction of a 240x300 (or 320x240) sheet: its pixel
# grid and halftone then come out coarse enough to survive the 64 px crops the demo trains on
# (a coarse print or a low-resolution screen held close). At 1.0 they vanish in the resize and
# the demo models stayed at ACC 70-77 %; docs/results.md has the runs.
MEDIUM_SCALE = 0.5

README = """facepad demo data: SYNTHETIC, for trying facepad end to end. Not a benchmark.

Made by `facepad demo` (facepad.data.demo.make_demo_dataset, seed {seed}) without any download.
Live faces: scikit-image's astronaut and LFW subset (upsampled, coloured), matplotlib's
grace_hopper.jpg, framed with random geometry and lighting. Spoofs: the same faces passed through
simulated prints (photo, poster, A4), replays (PC, pad, phone) and paper-cut masks.
Layout and labels follow CelebA-Spoof: Data/<split>/<subject>/<live|spoof>/<id>.jpg|png, each with
<id>_BB.txt (x y w h score in a 224x224 frame), metas/intra_test/<split>_label.json (44 ints per
image; the 40 face attributes are all 0 here). Subjects: {subjects} ({train} train, {test} test).
Images: {images} ({live} live, {spoof} spoof).
"""


@dataclass
class Source:
    """A face photo to draw from: RGB scene and the face box (x, y, w, h) in it."""

    subject: str
    scene: np.ndarray  # (H, W, 3) uint8
    box: tuple[float, float, float, float]


# --- sources -------------------------------------------------------------------------------------


def _backgrounds() -> dict[str, np.ndarray]:
    import numpy as np
    import skimage.data

    out = {}
    for name in BACKGROUNDS:
        img = getattr(skimage.data, name)()
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out[name] = np.ascontiguousarray(img[:, :, :3])
    return out


def _background(backgrounds: dict, rng: np.random.Generator, size: tuple[int, int]):
    """A random crop of a random background (or a plain wall), resized to size=(w, h)."""
    import cv2
    import numpy as np

    w, h = size
    if rng.random() < 0.2:  # a plain painted wall with a soft gradient
        colour = rng.uniform(90, 230, 3)
        ramp = np.linspace(rng.uniform(0.8, 1.0), rng.uniform(1.0, 1.2), h)[:, None, None]
        return np.clip(colour * ramp * np.ones((h, w, 1)), 0, 255).astype(np.uint8), 1
    name = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    img = backgrounds[name]
    ch = int(rng.uniform(0.4, 1.0) * img.shape[0])
    cw = min(img.shape[1], int(ch * w / h))
    y = rng.integers(0, img.shape[0] - ch + 1)
    x = rng.integers(0, img.shape[1] - cw + 1)
    crop = cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop), BACKGROUNDS[name]


def _lfw_scene(face: np.ndarray, backgrounds: dict, rng: np.random.Generator) -> np.ndarray:
    """A 25x25 grey LFW face, upsampled, coloured with a skin tone and set on a background."""
    import cv2
    import numpy as np

    size = 160
    big = cv2.resize(face.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    big = np.clip(big, 0, 1)[:, :, None]  # (S, S, 1)
    tone = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], np.float32)
    rgb = np.clip(255 * (big**1.1) * (tone / 255 * 1.2), 0, 255)
    scene, _ = _background(backgrounds, rng, (320, 320))
    scene = scene.astype(np.float32)
    # shoulders: a clothing-coloured ellipse under the face
    cloth = rng.uniform(20, 220, 3)
    cv2.ellipse(scene, (160, 330), (120, 95), 0, 180, 360, cloth.tolist(), -1)
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2 + 4), (66, 80), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)[:, :, None]
    y0, x0 = 60, 80
    region = scene[y0 : y0 + size, x0 : x0 + size]
    scene[y0 : y0 + size, x0 : x0 + size] = mask * rgb + (1 - mask) * region
    return np.clip(scene, 0, 255).astype(np.uint8)


def load_sources(n_subjects: int, seed: int) -> tuple[list[Source], dict[str, np.ndarray]]:
    """Subjects 1001.. : astronaut, Grace Hopper, then LFW faces; boxes from the face detector."""
    import cv2
    import matplotlib
    import numpy as np
    import skimage.data

    from facepad.data.faces import FaceDetector

    backgrounds = _backgrounds()
    rng = np.random.default_rng([seed, 7])
    scenes = [skimage.data.astronaut()]
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    scenes.append(cv2.cvtColor(cv2.imread(str(hopper)), cv2.COLOR_BGR2RGB))
    lfw = skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
    for face in lfw[: max(0, n_subjects - 2)]:
        scenes.append(_lfw_scene(face, backgrounds, rng))
    sources = []
    with FaceDetector(min_confidence=0.3) as detector:
        for k, scene in enumerate(scenes[:n_subjects]):
            found = detector.detect(scene)
            # fallback: the LFW face sits at a known place in its scene
            box = found[0].box if found else (96.0, 76.0, 128.0, 128.0)
            sources.append(Source(subject=str(1001 + k), scene=scene, box=box))
    return sources, backgrounds


# --- geometry ------------------------------------------------------------------------------------


def _similarity(box, target_center, target_width, angle_deg, flip, src_width):
    """3x3 matrix: flip (optional), then rotate/scale the box centre onto target_center."""
    import cv2
    import numpy as np

    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    flip_m = np.eye(3)
    if flip:
        flip_m = np.array([[-1.0, 0, src_width - 1], [0, 1, 0], [0, 0, 1]])
        cx = src_width - 1 - cx
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D((cx, cy), angle_deg, target_width / w)
    m[0, 2] += target_center[0] - cx
    m[1, 2] += target_center[1] - cy
    return m @ flip_m


def _map_box(matrix: np.ndarray, box) -> np.ndarray:
    """The 4 box corners (4, 2) mapped through a 3x3 matrix."""
    import numpy as np

    x, y, w, h = box
    pts = np.array([[x, y, 1], [x + w, y, 1], [x + w, y + h, 1], [x, y + h, 1]], np.float64)
    out = pts @ matrix.T
    return out[:, :2] / out[:, 2:3]


def _frame(src: Source, rng, size, face_frac):
    """The source scene warped into a (h, w) image with the face at a random pose; matrix too."""
    import cv2

    w, h = size
    center = (w * rng.uniform(0.4, 0.6), h * rng.uniform(0.38, 0.55))
    width = w * face_frac
    m = _similarity(
        src.box, center, width, rng.uniform(-10, 10), rng.random() < 0.5, src.scene.shape[1]
    )
    img = cv2.warpPerspective(src.scene, m, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    return img, m


def _place(medium, mask, background, rng, cover):
    """Paste `medium` (with alpha `mask`) onto `background` under a slight random perspective."""
    import cv2
    import numpy as np

    bh, bw = background.shape[:2]
    mh, mw = medium.shape[:2]
    scale = cover * min(bw / mw, bh / mh)
    cx, cy = bw * rng.uniform(0.4, 0.6), bh * rng.uniform(0.4, 0.6)
    half = np.array([mw, mh]) * scale / 2
    quad = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half + (cx, cy)
    quad += rng.normal(0, 0.04, (4, 2)) * (mw * scale, mh * scale)  # perspective
    corners = np.array([[0, 0], [mw, 0], [mw, mh], [0, mh]], np.float32)
    m = cv2.getPerspectiveTransform(corners, quad.astype(np.float32))
    warped = cv2.warpPerspective(medium, m, (bw, bh), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(mask, m, (bw, bh), flags=cv2.INTER_LINEAR)[:, :, None]
    out = alpha * warped.astype(np.float32) + (1 - alpha) * background.astype(np.float32)
    return out, m


def _spoof_medium(src: Source, spoof_type: int, rng):
    """The attack instrument: image (h, w, 3) float, alpha (h, w), matrix scene -> medium, cover."""
    import cv2
    import numpy as np

    name = CELEBA_SPOOF_TYPES[spoof_type]
    portrait = name in ("photo", "A4", "phone", "face_mask", "upper_body_mask", "region_mask")
    sheet = (240, 300) if portrait else (320, 240)
    mw, mh = (int(MEDIUM_SCALE * side) for side in sheet)
    face = rng.uniform(0.35, 0.55)
    img, m = _frame(src, rng, (mw, mh), face)
    mask = np.ones((mh, mw), np.float32)
    shift = np.eye(3)
    f = print_medium(img, rng) if spoof_type <= 6 else screen_medium(img, rng)
    corners = _map_box(m, src.box)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    cx, cy, fw, fh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0

    if name == "photo":
        margin = int(rng.uniform(0.03, 0.1) * mw)
        f, mask = add_border(f, mask, margin, margin, rng.uniform(225, 250))
        shift[:2, 2] = margin
        cover = rng.uniform(0.55, 0.85)
    elif name == "poster":
        cover = rng.uniform(0.9, 1.3)  # often fills the frame: no edge to see
    elif name == "A4":
        mx, my = int(rng.uniform(0.1, 0.2) * mw), int(rng.uniform(0.05, 0.15) * mh)
        f, mask = add_border(f, mask, mx, my, rng.uniform(225, 250))
        f = np.concatenate([f, np.full((mh // 2, f.shape[1], 3), f[0, 0], np.float32)])
        mask = np.concatenate([mask, np.ones((mh // 2, mask.shape[1]), np.float32)])
        shift[:2, 2] = (mx, my)
        cover = rng.uniform(0.8, 1.1)
    elif name in ("face_mask", "upper_body_mask"):
        mask = np.zeros((mh, mw), np.float32)
        rx, ry = fw * rng.uniform(0.6, 0.75), fh * rng.uniform(0.75, 0.9)
        n = 28  # a cut edge: a jagged polygon around the face
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        jitter = 1 + rng.uniform(-0.06, 0.06, n)
        pts = np.stack([cx + rx * jitter * np.cos(t), cy + ry * jitter * np.sin(t)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1.0)
        if name == "upper_body_mask":
            body = np.array([[cx - 1.6 * rx, mh], [cx - 0.7 * rx, cy + ry * 0.8],
                             [cx + 0.7 * rx, cy + ry * 0.8], [cx + 1.6 * rx, mh]])  # fmt: skip
            cv2.fillPoly(mask, [body.astype(np.int32)], 1.0)
        cover = rng.uniform(0.8, 1.1)
    elif name == "region_mask":
        # eye holes cut out of the print: the background shows through
        for side in (-1, 1):
            centre = (int(cx + side * fw * 0.2), int(cy - fh * 0.08))
            axes = (int(fw * 0.11), int(fh * 0.06))
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 0.0, -1)
        cover = rng.uniform(0.6, 0.9)
    else:  # replay: a bezel around the screen
        frac = {"PC": 0.03, "pad": 0.06, "phone": 0.1}[name]
        margin = max(2, int(rng.uniform(0.5, 1.5) * frac * mw))
        f, mask = add_border(f, mask, margin, margin, rng.uniform(5, 40))
        shift[:2, 2] = margin
        cover = {"PC": rng.uniform(0.9, 1.3), "pad": rng.uniform(0.7, 1.0)}.get(
            name, rng.uniform(0.5, 0.8)
        )
    return f, mask, shift @ m, cover


# --- capture -------------------------------------------------------------------------------------


def _capture(f: np.ndarray, rng, illumination: int) -> np.ndarray:
    """The camera: lighting of the given CelebA-Spoof class, blur and sensor noise (uint8 out)."""
    import cv2
    import numpy as np

    h, w = f.shape[:2]
    gain = {1: rng.uniform(0.85, 1.15), 2: rng.uniform(1.2, 1.5), 3: rng.uniform(0.6, 0.85),
            4: rng.uniform(0.3, 0.55)}[illumination]  # fmt: skip
    f = f * gain * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = ((xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)) / max(h, w)
    f = f * (1 + rng.uniform(0, 0.4) * ramp[:, :, None])
    if illumination == 3:  # back light: a bright glow behind, the face stays dark
        glow = np.clip(1.5 - np.hypot(xx - w / 2, yy - h / 2) / (0.35 * max(h, w)), 0, 1)
        f = f + (1 - glow[:, :, None]) * rng.uniform(60, 120)
    f = 255 * np.clip(f / 255, 0, 1) ** rng.uniform(0.8, 1.25)
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        f = cv2.GaussianBlur(f, (0, 0), sigma)
    noise = rng.uniform(1, 4) * (2.0 if illumination == 4 else 1.0)
    f = f + rng.normal(0, noise, f.shape).astype(np.float32)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8)


def _render(src: Source, spoof_type: int, illumination: int, backgrounds: dict, rng):
    """One image of `src` (spoof_type 0 = live): (rgb uint8, box (x, y, w, h), environment id)."""
    import numpy as np

    size = (int(rng.integers(20, 33)) * 8, int(rng.integers(24, 37)) * 8)  # (w, h)
    if spoof_type == 0:
        img, m = _frame(src, rng, size, rng.uniform(0.3, 0.55))
        f = img.astype(np.float32)
        environment = 2 if rng.random() < 0.3 else 1
    else:
        medium, mask, m_medium, cover = _spoof_medium(src, spoof_type, rng)
        background, environment = _background(backgrounds, rng, size)
        f, m_place = _place(medium, mask, background, rng, cover)
        m = m_place @ m_medium
    rgb = _capture(f, rng, illumination)
    corners = _map_box(m, src.box)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return rgb, (x0, y0, x1 - x0, y1 - y0), environment


def _encode(rgb: np.ndarray, ext: str, quality: int) -> bytes:
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise RuntimeError(f"could not encode a demo image as {ext}")
    return buf.tobytes()


# --- dataset -------------------------------------------------------------------------------------


def make_demo_dataset(
    out_dir: str | Path,
    seed: int = 0,
    n_subjects: int = 100,
    live_per_subject: int = 4,
    spoof_per_subject: int = 4,
    test_fraction: float = 0.25,
    overwrite: bool = False,
) -> Path:
    """Write the demo set (CelebA-Spoof layout, intra_test labels) to `out_dir`; returns it.

    `n_subjects` (2-102) people, each with `live_per_subject` live and `spoof_per_subject` spoof
    images (spoof types cycled from a seeded order); `test_fraction` of the subjects go to test.
    Defaults: 100 subjects (many people, few images each: what lets a model trained on the demo
    hold up on its test people), 800 images, half of them live. A finished demo with the same
    parameters already in `out_dir` is reused as is (`demo.json`, written last, records them), so
    reruns are cheap; a half-written demo (killed run) is rewritten; any other non-empty folder
    needs `overwrite`.
    """
    import numpy as np

    out = Path(out_dir)
    if not 2 <= n_subjects <= 102:
        raise ValueError(f"n_subjects must be 2-102 (the demo has 102 faces), got {n_subjects}")
    params = dict(
        seed=seed,
        n_subjects=n_subjects,
        live_per_subject=live_per_subject,
        spoof_per_subject=spoof_per_subject,
        test_fraction=test_fraction,
    )
    if _reuse_or_clear(out, params, overwrite):
        return out
    sources, backgrounds = load_sources(n_subjects, seed)
    order = np.random.default_rng([seed, 1]).permutation(n_subjects)
    n_test = max(1, round(test_fraction * n_subjects))
    test_ids = {sources[i].subject for i in order[:n_test]}

    labels: dict[str, dict[str, list[int]]] = {"train": {}, "test": {}}
    for k, src in enumerate(sources):
        split = "test" if src.subject in test_ids else "train"
        types_rng = np.random.default_rng([seed, 2, k])
        spoof_types = [SPOOF_TYPES[i % 9] for i in types_rng.permutation(9)]
        plan = [0] * live_per_subject + [spoof_types[i % 9] for i in range(spoof_per_subject)]
        for n, spoof_type in enumerate(plan):
            rng = np.random.default_rng([seed, 3, k, n])
            key, vector = _write_image(out, split, src, n, spoof_type, backgrounds, rng)
            labels[split][key] = vector

    metas = out / "metas" / "intra_test"
    metas.mkdir(parents=True, exist_ok=True)
    for split, entries in labels.items():
        (metas / f"{split}_label.json").write_text(json.dumps(entries))
    n_live = sum(v[43] == 0 for e in labels.values() for v in e.values())
    n_all = sum(len(e) for e in labels.values())
    (out / "README.txt").write_text(
        README.format(
            seed=seed,
            subjects=n_subjects,
            train=n_subjects - n_test,
            test=n_test,
            images=n_all,
            live=n_live,
            spoof=n_all - n_live,
        )
    )
    (out / MARKER).write_text(json.dumps(params))
    return out


def _reuse_or_clear(out: Path, params: dict, overwrite: bool) -> bool:
    """True if `out` holds a finished demo made with `params` (reuse it); else clear what a
    killed run or `overwrite` allows, refusing any other non-empty folder."""
    marker = out / MARKER
    if not (out.exists() and any(out.iterdir())):
        return False
    if marker.is_file() and json.loads(marker.read_text()) == params and not overwrite:
        return True
    partial = not marker.exists() and {p.name for p in out.iterdir()} <= DEMO_ENTRIES
    if not (overwrite or partial):
        raise FileExistsError(
            f"{out} is not empty and holds no demo made with these parameters; choose a new "
            "folder or pass overwrite (--overwrite)"
        )
    marker.unlink(missing_ok=True)
    for sub in ("Data", "metas"):
        shutil.rmtree(out / sub, ignore_errors=True)
    return False


def _write_image(out: Path, split: str, src, n: int, spoof_type: int, backgrounds, rng):
    """Render, encode and write image n of a subject with its CelebA-Spoof `_BB.txt` box;
    returns its label key and 44-value label vector (spoof type, illumination, environment,
    spoof flag in the last four)."""
    illumination = int(rng.choice(ILLUMINATIONS[0], p=ILLUMINATIONS[1]))
    rgb, box, environment = _render(src, spoof_type, illumination, backgrounds, rng)
    folder = "spoof" if spoof_type else "live"
    ext = ".png" if rng.random() < 0.2 else ".jpg"
    data = _encode(rgb, ext, int(rng.integers(75, 96)))
    key = f"Data/{split}/{src.subject}/{folder}/{n + 1:06d}{ext}"
    path = out / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    h, w = rgb.shape[:2]
    bx, by, bw, bh = box
    frame = (bx * BOX_FRAME / w, by * BOX_FRAME / h, bw * BOX_FRAME / w, bh * BOX_FRAME / h)
    score = rng.uniform(0.9, 1.0)
    box_text = " ".join(str(round(v)) for v in frame) + f" {score:.4f}\n"
    (path.parent / f"{n + 1:06d}_BB.txt").write_text(box_text)
    spoof = int(spoof_type > 0)
    attributes = [spoof_type, illumination if spoof else 0, environment if spoof else 0, spoof]
    return key, [0] * 40 + attributes


def register(subparsers) -> None:
    """Add `facepad demo` to the CLI."""
    parser = subparsers.add_parser(
        "demo",
        help="write a small synthetic demo dataset (CelebA-Spoof layout), no download",
        description=make_demo_dataset.__doc__.splitlines()[0],
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write (new or empty)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files")
    parser.add_argument("--subjects", type=int, default=100, help="number of people (2-102)")
    parser.add_argument("--live", type=int, default=4, help="live images per subject")
    parser.add_argument("--spoof", type=int, default=4, help="spoof images per subject")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing demo set")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    import time

    start = time.perf_counter()
    existed = (Path(args.out) / MARKER).is_file() and not args.overwrite
    out = make_demo_dataset(
        args.out,
        seed=args.seed,
        n_subjects=args.subjects,
        live_per_subject=args.live,
        spoof_per_subject=args.spoof,
        overwrite=args.overwrite,
    )
    n = sum(1 for p in out.glob("Data/*/*/*/*") if not p.name.endswith("_BB.txt"))
    if existed:
        print(f"{out} already holds this demo set ({n} images): reused")
    else:
        print(f"wrote {n} images to {out} in {time.perf_counter() - start:.1f} s")
    return 0
