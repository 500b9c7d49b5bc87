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


def as_low_resolution_scan(page: Image.Image, rng: random.Random) -> Image.Image:
    """The page scanned at 60-75 dpi: body glyphs 6-7 px tall."""
    factor = rng.uniform(0.42, 0.5)
    size = (int(page.width * factor), int(page.height * factor))
    return page.resize(size, Image.Resampling.BILINEAR)


def as_phone_photo(page: Image.Image, rng: random.Random) -> Image.Image:
    """The page photographed by a phone: light falling off from one spot, the shadow of a hand
    across one side, a small tilt, focus blur and JPEG."""
    pixels = np.asarray(page, dtype=np.float32)
    height, width = pixels.shape
    y, x = np.mgrid[0:height, 0:width]
    spot_x, spot_y = rng.uniform(0, width), rng.uniform(0, height)
    distance = np.hypot((x - spot_x) / width, (y - spot_y) / height)
    light = 1.0 - rng.uniform(0.35, 0.55) * distance / 1.2
    shadow_edge = rng.uniform(0.3, 0.7) * width + (y - height / 2) * 0.3
    light *= np.where(x > shadow_edge, rng.uniform(0.6, 0.75), 1.0)
    shaded = pixels * light * rng.uniform(0.85, 0.95)
    shaded += np.random.default_rng(rng.randint(0, 2**31)).normal(0, 6, shaded.shape)
    photo = Image.fromarray(np.clip(shaded, 0, 255).astype(np.uint8))
    photo = photo.rotate(
        rng.uniform(-3, 3), resample=Image.Resampling.BICUBIC, fillcolor=int(shaded.mean())
    ).filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.1)))
    jpeg = io.BytesIO()
    photo.save(jpeg, format="JPEG", quality=rng.randint(55, 75))
    return Image.open(jpeg).convert("L")


def as_thermal_print(page: Image.Image, rng: random.Random) -> Image.Image:
    """The page as a faded thermal receipt: grey ink fading in bands down the roll on
    off-white paper, with the print head's grain and a soft edge."""
    ink = 1.0 - np.asarray(page, dtype=np.float32) / 255.0
    rows = np.linspace(0, 1, ink.shape[0])[:, np.newaxis]
    bands = np.sin(rows * rng.uniform(5, 12) + rng.uniform(0, 6)) ** 2
    strength = rng.uniform(0.35, 0.55) + 0.25 * bands
    paper = rng.uniform(225, 240)
    printed = paper - ink * strength * (paper - 90)
    printed += np.random.default_rng(rng.randint(0, 2**31)).normal(0, 5, printed.shape)
    faded = Image.fromarray(np.clip(printed, 0, 255).astype(np.uint8))
    return faded.filter(ImageFilter.GaussianBlur(0.7))


HARD_CAPTURES = {
    "low-resolution scan": as_low_resolution_scan,
    "phone photo": as_phone_photo,
    "thermal print": as_thermal_print,
}


def render_hard_capture(capture: str, label: str, index: int, seed: int) -> tuple[Image.Image, str]:
    """One document as a hard capture (see ``HARD_CAPTURES``) and its ground-truth text."""
    rng = document_rng(seed, label, index)
    lines = GENERATORS[label](rng)
    page = render_lines(lines, rng, narrow=label == "receipt")
    return HARD_CAPTURES[capture](page, rng), "\n".join(text for _, text in lines)


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
