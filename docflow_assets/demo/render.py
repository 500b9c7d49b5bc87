"""Render labelled documents as degraded scans: varied fonts, layouts, skew, noise, blur, JPEG."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from docflow_assets.demo.content import DOCUMENT_CLASSES, GENERATORS, Lines

FONT_DIRS = [Path("/usr/share/fonts/truetype")]
PROPORTIONAL_FONTS = [
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSerif.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSerif-Regular.ttf",
    "freefont/FreeSans.ttf",
    "freefont/FreeSerif.ttf",
]
BOLD_FONTS = [
    "dejavu/DejaVuSans-Bold.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSerif-Bold.ttf",
    "freefont/FreeSansBold.ttf",
]
MONO_FONTS = [
    "dejavu/DejaVuSansMono.ttf",
    "liberation/LiberationMono-Regular.ttf",
    "freefont/FreeMono.ttf",
]
FIXED_PDF_DATE = time.gmtime(1_704_067_200)  # 2024-01-01
PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi
RECEIPT_WIDTH = 640
FORMATS = ["png", "png", "jpg", "png", "pdf", "tif", "png", "jpg"]


@dataclass(frozen=True)
class RenderedDocument:
    filename: str
    label: str
    text: str


def available_fonts(names: list[str]) -> list[Path]:
    found = [folder / name for name in names for folder in FONT_DIRS if (folder / name).is_file()]
    if not found:
        raise FileNotFoundError(
            f"none of the fonts {names} is installed; install fonts-dejavu-core "
            "fonts-liberation fonts-freefont-ttf"
        )
    return found


def render_lines(lines: Lines, rng: random.Random, narrow: bool) -> Image.Image:
    width = RECEIPT_WIDTH if narrow else PAGE_SIZE[0]
    body_size = rng.randint(21, 26) if not narrow else rng.randint(20, 23)
    regular = ImageFont.truetype(str(rng.choice(available_fonts(PROPORTIONAL_FONTS))), body_size)
    bold_path = str(rng.choice(available_fonts(BOLD_FONTS)))
    fonts = {
        "title": ImageFont.truetype(bold_path, int(body_size * rng.uniform(1.5, 1.9))),
        "heading": ImageFont.truetype(bold_path, int(body_size * rng.uniform(1.05, 1.25))),
        "body": regular,
        "mono": ImageFont.truetype(str(rng.choice(available_fonts(MONO_FONTS))), body_size - 2),
    }
    spacing = rng.uniform(1.3, 1.6)
    margin = rng.randint(30, 50) if narrow else rng.randint(70, 150)
    centre_title = narrow or rng.random() < 0.5
    height = PAGE_SIZE[1] if not narrow else int(120 + len(lines) * body_size * spacing * 1.2)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = rng.randint(60, 120)
    for style, text in lines:
        font = fonts[style]
        size = int(font.size)
        if style in {"title", "heading"}:
            y += int(size * 0.4)
        left = margin
        if style == "title" and centre_title:
            left = max(margin, (width - int(draw.textlength(text, font=font))) // 2)
        if y + size > height - 40:
            break
        draw.text((left, y), text, fill=rng.randint(0, 50), font=font)
        y += int(size * spacing)
    return page


def degrade(page: Image.Image, rng: random.Random) -> Image.Image:
    """What a scanner or phone does to a page: tilt, grey paper, sensor noise, blur."""
    angle = rng.uniform(-2.5, 2.5)
    background = rng.randint(215, 250)
    page = page.point(lambda value: int(value * background / 255))
    page = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=background)
    pixels = np.asarray(page, dtype=np.float32)
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 14), pixels.shape)
    page = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return page


def encode(page: Image.Image, file_format: str, rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    if file_format == "jpg":
        page.save(buffer, format="JPEG", quality=rng.randint(35, 85))
    elif file_format == "pdf":
        jpeg = io.BytesIO()
        page.save(jpeg, format="JPEG", quality=rng.randint(50, 85))
        Image.open(jpeg).save(
            buffer,
            format="PDF",
            resolution=150,
            creationDate=FIXED_PDF_DATE,  # a fixed date keeps a seed's corpus byte-identical
            modDate=FIXED_PDF_DATE,
        )
    elif file_format == "tif":
        page.save(buffer, format="TIFF", compression="tiff_deflate", dpi=(150, 150))
    else:
        page.save(buffer, format="PNG", dpi=(150, 150))
    return buffer.getvalue()


def document_rng(seed: int, label: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{label}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def render_document(label: str, index: int, seed: int) -> tuple[bytes, str, str]:
    """One document's file bytes, file extension and ground-truth text."""
    rng = document_rng(seed, label, index)
    lines = GENERATORS[label](rng)
    page = degrade(render_lines(lines, rng, narrow=label == "receipt"), rng)
    file_format = FORMATS[(index + DOCUMENT_CLASSES.index(label)) % len(FORMATS)]
    return encode(page, file_format, rng), file_format, "\n".join(text for _, text in lines)


def render_corpus(
    out_dir: Path,
    per_class: int,
    seed: int = 0,
    classes: tuple[str, ...] = DOCUMENT_CLASSES,
    show_progress: bool = False,
) -> list[RenderedDocument]:
    """Write ``per_class`` documents of each class, their ground truth and ``labels.csv``."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(label, index) for index in range(per_class) for label in classes]
    rendered = []
    for label, index in tqdm(jobs, desc="rendering", unit="doc", disable=not show_progress):
        data, extension, text = render_document(label, index, seed)
        stem = f"{label}-{index:04d}"
        (out_dir / f"{stem}.{extension}").write_bytes(data)
        (out_dir / f"{stem}.gt.txt").write_text(text + "\n")
        rendered.append(RenderedDocument(f"{stem}.{extension}", label, text))
    with (out_dir / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows((item.filename, item.label) for item in rendered)
    return rendered
