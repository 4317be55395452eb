"""Synthetic 384x512 face photos whose mask state, gender and age are visible and learnable.

    python -m scripts.sample_data.mask DIR [--per-class 30] [--seed 0]

Drawn with Pillow, deterministic by seed. Cues: a mask over nose and mouth (worn), below
the nose (incorrect) or none (a visible mouth); long hair (female) or short hair (male);
hair colour and forehead lines by age group. Position, size, skin tone, background and
noise vary. DIR gets ``<class_id>/<n>.jpg`` files and ``labels.csv``.

A photo is a scene (:func:`draw_scene`: the shapes) taken by a camera (:func:`photograph`:
a slight blur and sensor noise). Each photo of :func:`faces` has a generator of its own, so
its scene is the same whether or not it is photographed: the trainer, which shrinks every
photo 16-fold, trains on the scenes (see scripts/train/mask.py).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.mask.contract import NUM_CLASSES, class_parts

WIDTH, HEIGHT = 384, 512
HAIR = {  # per age group: (dark, brown, blonde) for the young, greying, grey/white
    "<30": [(30, 20, 15), (90, 55, 25), (200, 170, 90)],
    "30-59": [(70, 60, 55), (110, 95, 80), (130, 120, 110)],
    ">=60": [(200, 200, 200), (225, 225, 220), (170, 170, 175)],
}
MASK_COLOURS = [(220, 230, 245), (40, 40, 45), (120, 170, 220), (235, 235, 235)]


def jitter(rng: np.random.Generator, colour: tuple[int, int, int], spread: int = 18) -> tuple:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in colour)


def draw_scene(class_id: int, rng: np.random.Generator) -> Image.Image:
    """The face of class ``class_id`` at 384x512, sharp and noiseless."""
    mask, gender, age = class_parts(class_id)
    background = jitter(rng, tuple(rng.integers(60, 200, 3)), 0)
    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    draw = ImageDraw.Draw(image)
    cx = WIDTH / 2 + rng.normal(0, 18)
    cy = HEIGHT * 0.45 + rng.normal(0, 18)
    face_w, face_h = rng.uniform(120, 150), rng.uniform(165, 200)
    hair = jitter(rng, HAIR[age][rng.integers(0, 3)])
    skin = jitter(rng, [(240, 205, 180), (200, 150, 110), (140, 95, 65)][rng.integers(0, 3)])

    if gender == "female":  # long hair behind the face, down to the shoulders
        draw.rounded_rectangle(
            (cx - face_w * 0.75, cy - face_h * 0.65, cx + face_w * 0.75, cy + face_h * 0.95),
            radius=50,
            fill=hair,
        )
    draw.rectangle(
        (cx - face_w * 0.9, cy + face_h * 0.62, cx + face_w * 0.9, HEIGHT),
        fill=jitter(rng, (70, 70, 110), 60),
    )
    draw.ellipse((cx - face_w / 2, cy - face_h / 2, cx + face_w / 2, cy + face_h / 2), fill=skin)
    # hair on top: a cap for short hair, a fringe for long hair
    top = cy - face_h / 2
    draw.chord(
        (cx - face_w * 0.52, top - 12, cx + face_w * 0.52, top + face_h * 0.45), 180, 360, fill=hair
    )
    if age == ">=60":  # forehead lines
        for k in range(3):
            y = top + face_h * (0.27 + 0.045 * k)
            draw.line(
                (cx - face_w * 0.25, y, cx + face_w * 0.25, y),
                fill=jitter(rng, (110, 80, 60)),
                width=2,
            )
    eye_y = cy - face_h * 0.05
    for side in (-1, 1):
        ex = cx + side * face_w * 0.2
        draw.ellipse((ex - 9, eye_y - 6, ex + 9, eye_y + 6), fill=(35, 30, 30))
    nose_y = cy + face_h * 0.12
    draw.polygon(
        [(cx, eye_y + 10), (cx - 9, nose_y), (cx + 9, nose_y)], fill=jitter(rng, (160, 110, 85))
    )
    mouth_y = cy + face_h * 0.27
    draw.line((cx - 22, mouth_y, cx + 22, mouth_y), fill=(170, 50, 55), width=6)

    colour = jitter(rng, MASK_COLOURS[rng.integers(0, len(MASK_COLOURS))], 10)
    if mask == "wear":  # over nose and mouth
        box = (cx - face_w * 0.42, eye_y + 14, cx + face_w * 0.42, cy + face_h * 0.45)
    elif mask == "incorrect":  # below the nose, over the chin
        box = (cx - face_w * 0.42, mouth_y + 14, cx + face_w * 0.42, cy + face_h * 0.5)
    if mask != "not_worn":
        draw.rounded_rectangle(box, radius=18, fill=colour)
        for side in (-1, 1):  # ear loops
            x = cx + side * face_w * 0.42
            draw.line((x, box[1] + 10, x + side * 18, eye_y), fill=colour, width=3)
    return image


def photograph(scene: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``scene`` as a camera takes it: a Gaussian blur of 0.3 to 1.2 pixels and sensor noise
    (sigma 6 grey levels), rounded to the nearest level, so that on average the photo is
    as bright as the scene (what the trainer relies on)."""
    blurred = np.asarray(scene.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))))
    noise = rng.standard_normal(blurred.shape, dtype=np.float32)
    noisy = np.rint(blurred + noise * np.float32(6))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def draw_face(class_id: int, rng: np.random.Generator) -> Image.Image:
    """A photo of a face of class ``class_id``: its scene, photographed."""
    return photograph(draw_scene(class_id, rng), rng)


def jpeg(class_id: int = 7, seed: int = 0) -> bytes:
    """One synthetic face photo as JPEG bytes (quality 90), for benchmarks and checks."""
    buffer = io.BytesIO()
    draw_face(class_id, np.random.default_rng(seed)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def faces(
    per_class: int, seed: int = 0, photographed: bool = True
) -> Iterator[tuple[int, Image.Image]]:
    """``per_class`` photos of every class, in a seeded shuffled order; with ``photographed``
    False their scenes (the same faces, sharp and noiseless: a photo's generator is its own,
    ``(seed, n)``, so leaving the camera out changes no other photo)."""
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(NUM_CLASSES), per_class))
    for n, class_id in enumerate(labels):
        rng = np.random.default_rng((seed, n))
        scene = draw_scene(int(class_id), rng)
        yield int(class_id), photograph(scene, rng) if photographed else scene


def write(directory: Path, per_class: int = 30, seed: int = 0) -> Path:
    rows = ["path,class_id"]
    for n, (class_id, image) in enumerate(faces(per_class, seed)):
        path = Path(str(class_id)) / f"{n}.jpg"
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        image.save(directory / path, quality=90)
        rows.append(f"{path},{class_id}")
    (directory / "labels.csv").write_text("\n".join(rows) + "\n")
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {write(args.directory, args.per_class, args.seed)}")
