"""OpenCV page preprocessing before OCR. Each step is switchable and reports what it did.

Order matters: lighting first (a shadow fools the orientation and skew estimates, and
Tesseract's orientation pass, as much as it fools Tesseract), then orientation and deskew (they
need the page's geometry as scanned), then resolution, then denoising before contrast and
binarisation (binarising noise freezes it into the glyphs). Lighting and upscaling act only on
pages that need them (paper shaded unevenly, text under 10 px), so they are on by default at the
cost of a look at a small copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytesseract
from PIL import Image

from docflow_assets.settings import PREPROCESSING_STEPS

STEPS = ("illumination", "orientation", "deskew", "upscale", "denoise", "contrast", "binarize")
DEFAULT_STEPS = PREPROCESSING_STEPS
# Median glyph height (px) under which a page is enlarged (a page scanned or photographed at
# under ~100 dpi), and the height it is enlarged to: on rendered pages shrunk to 70 dpi that
# halves Tesseract's CER, while enlarging 150 dpi pages (glyphs of 11-14 px) made it worse.
MIN_TEXT_HEIGHT = 10
UPSCALED_TEXT_HEIGHT = 20
MAX_UPSCALE = 3.0
# Grey levels between the lightest and darkest paper of a page: a scanner's paper varies by a
# few (0-5 measured), a phone photo's lamp fall-off and hand shadow by 60-100.
UNEVEN_PAPER = 40
SHADED_SHARE = 30  # percentile of the paper's shade compared with its lightest
MIN_DESKEW_DEGREES = 0.2
GUESS_WIDTH = 1200  # px: enough to see ascenders and descenders of 10-point text
MIN_LINE_ROWS = 6  # thinner ink runs are rules, dots or noise, not text lines
CLEAR_EVIDENCE = 1.25  # how far one way of reading a page's profile must beat the other


@dataclass(frozen=True)
class PreprocessConfig:
    steps: tuple[str, ...] = DEFAULT_STEPS

    @classmethod
    def parse(cls, spec: str) -> PreprocessConfig:
        steps = tuple(step.strip() for step in spec.split(",") if step.strip())
        unknown = [step for step in steps if step not in STEPS]
        if unknown:
            raise ValueError(f"unknown preprocessing step(s) {unknown}; known: {', '.join(STEPS)}")
        return cls(tuple(step for step in STEPS if step in steps))

    def without(self, *steps: str) -> PreprocessConfig:
        return PreprocessConfig(tuple(kept for kept in self.steps if kept not in steps))


def to_grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image if image.mode == "L" else image.convert("L"))


@dataclass(frozen=True)
class Orientation:
    rotate: int  # clockwise degrees (0/90/180/270) that make the page upright
    script: str  # Tesseract's name of the writing system, e.g. Latin, Cyrillic
    script_confidence: float


def detect_orientation(grey: np.ndarray) -> Orientation | None:
    """How to turn the page upright, and its script, from Tesseract's OSD."""
    try:
        osd = pytesseract.image_to_osd(
            Image.fromarray(grey),
            config="--psm 0 -c min_characters_to_try=10",
            output_type=pytesseract.Output.DICT,
        )
    except pytesseract.TesseractError:
        return None  # too little text to tell
    return Orientation(int(osd["rotate"]) % 360, str(osd["script"]), float(osd["script_conf"]))


def orientation_record(orientation: Orientation | None) -> dict[str, Any]:
    if orientation is None:
        return {"orientation_osd": None}
    return {
        "orientation_osd": orientation.rotate,
        "script": orientation.script,
        "script_confidence": orientation.script_confidence,
    }


def rotate_quarter(grey: np.ndarray, clockwise_degrees: int) -> np.ndarray:
    turns = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(grey, turns[clockwise_degrees]) if clockwise_degrees in turns else grey


def _ink(grey: np.ndarray, width: int = 600) -> np.ndarray:
    scale = min(1.0, width / grey.shape[1])
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, binary = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return binary


def _profile_score(ink: np.ndarray, angle: float) -> float:
    centre = (ink.shape[1] / 2, ink.shape[0] / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rotated = cv2.warpAffine(ink, matrix, (ink.shape[1], ink.shape[0]), flags=cv2.INTER_NEAREST)
    rows = cv2.reduce(rotated, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel().astype(np.float64)
    return float(np.sum(np.diff(rows) ** 2))


def _level(ink: np.ndarray, limit: float = 6.0) -> tuple[float, float]:
    """The angle whose rotation gives the sharpest row profile, and that sharpness: whole
    degrees, then fifths around the best."""
    scores = {
        float(angle): _profile_score(ink, float(angle))
        for angle in np.arange(-limit, limit + 1e-9, 1.0)
    }
    best = max(scores, key=scores.__getitem__)
    for angle in np.arange(best - 0.6, best + 0.6 + 1e-9, 0.2):
        scores[float(angle)] = _profile_score(ink, float(angle))
    best = max(scores, key=scores.__getitem__)
    return best, scores[best]


def estimate_skew(grey: np.ndarray, limit: float = 6.0) -> float:
    """Degrees to rotate (counter-clockwise) so text lines run level: sharpest row profile wins."""
    # A 600-px-wide ink mask, whole degrees, then fifths around the best: 20 cheap rotations
    # (this runs on every page, so it must cost little next to Tesseract itself).
    return _level(_ink(grey), limit)[0]


def _line_runs(rows: np.ndarray, floor: float) -> list[tuple[int, int]]:
    inked = np.r_[0, (rows > floor).astype(np.int8), 0]
    edges = np.flatnonzero(np.diff(inked))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _ink_above_and_below_lines(grey: np.ndarray) -> tuple[int, int]:
    """Ink above and below the text lines' x-height bands. In Latin script ascenders and
    capitals outweigh descenders, so upside down it is the other way round."""
    _, binary = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    rows = binary.sum(axis=1, dtype=np.int64)
    above = below = 0
    for start, end in _line_runs(rows, rows.max() * 0.02):
        if end - start < MIN_LINE_ROWS:
            continue
        profile = rows[start:end]
        band = np.flatnonzero(profile >= 0.5 * profile.max())
        above += int(profile[: band[0]].sum())
        below += int(profile[band[-1] + 1 :].sum())
    return above, below


def _small_copy(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The page at most GUESS_WIDTH px across, and the scale it was shrunk by."""
    scale = min(1.0, GUESS_WIDTH / max(grey.shape))
    if scale == 1.0:
        return grey, scale
    return cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def guess_quarter_turn(grey: np.ndarray) -> tuple[int, float]:
    """Clockwise degrees (0/90/180/270) that probably turn the page upright, and the page's skew
    once turned, in milliseconds and without Tesseract: text lines run across (the row profile
    is sharper than the column profile at their best small angles) and ascenders outweigh
    descenders. A page not clearly turned (little text, charts, a script without that asymmetry)
    counts as upright. A wrong guess costs time, not text: the first reading is then unsure and
    Tesseract's orientation pass decides."""
    small, _ = _small_copy(grey)
    ink = _ink(small)
    # Each way's sharpest profile; read across, its angle is already the page's skew.
    across_skew, across = _level(ink)
    down = _level(np.ascontiguousarray(ink.T))[1]
    sideways = down > CLEAR_EVIDENCE * across
    candidate = rotate_quarter(small, 90) if sideways else small
    skew = estimate_skew(candidate) if sideways else across_skew
    level = rotate_by(candidate, skew) if abs(skew) >= MIN_DESKEW_DEGREES else candidate
    above, below = _ink_above_and_below_lines(level)
    if sideways:
        return (90 if above >= below else 270), skew
    return (180 if below > CLEAR_EVIDENCE * above else 0), skew


def rotate_by(grey: np.ndarray, angle: float) -> np.ndarray:
    height, width = grey.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    # The paper's shade fills the corners; every 8th pixel estimates it 60x cheaper than all.
    background = int(np.median(grey[::8, ::8]))
    return cv2.warpAffine(
        grey, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=background
    )


def text_height(grey: np.ndarray) -> float | None:
    """Median height of glyph-sized connected components, in pixels."""
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    glyphs = heights[(heights >= 4) & (heights <= grey.shape[0] / 10) & (widths <= heights * 4)]
    return float(np.median(glyphs)) if len(glyphs) >= 20 else None


def page_text_height(grey: np.ndarray) -> float | None:
    """``text_height`` measured on a copy at most 1200 px across (a 300 dpi page's glyphs stay
    7 px or more there), in the page's own pixels: milliseconds instead of tens."""
    small, scale = _small_copy(grey)
    height = text_height(small)
    return height / scale if height is not None else None


def paper_shade(grey: np.ndarray) -> tuple[np.ndarray, int]:
    """What the paper alone looks like under the page's lighting (a small, smooth copy of the
    page with its ink closed away), and how far apart its lighter and darker parts lie."""
    small, _ = _small_copy(grey)
    glyphs = text_height(small) or 10.0
    # Closing with a square wider than the tallest glyphs (titles run ~2x the body) fills them in.
    side = int(3 * glyphs) | 1
    closed = cv2.morphologyEx(
        small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    )
    # Lighting changes over tens of glyphs: a copy a quarter the size carries it, and smoothing
    # that costs a sixteenth.
    height, width = closed.shape
    coarse_size = (max(1, width // 4), max(1, height // 4))
    coarse = cv2.resize(closed, coarse_size, interpolation=cv2.INTER_AREA)
    shade = cv2.GaussianBlur(coarse, (0, 0), side / 8)
    # Not the darkest percent: figures, photos and black rules close to dark patches, which
    # are no shadow. A shadow or fall-off darkens a third of the page or more.
    darker, lighter = np.percentile(shade, (SHADED_SHARE, 95))
    return shade, int(lighter - darker)


def flatten_illumination(grey: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """The page divided by its paper's shade: a shadow or a lamp's fall-off no longer looks
    like ink to Tesseract's global threshold (rendered phone photos: CER 0.50 to 0.02)."""
    full_shade = cv2.resize(shade, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(grey, full_shade, scale=255)


def even_out_lighting(grey: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The page with its paper's shading divided out when the shading is uneven (a photo), as
    it came otherwise (a scan), and a record of which."""
    shade, spread = paper_shade(grey)
    uneven = spread >= UNEVEN_PAPER
    record = {"paper_shade_spread": spread, "illumination_flattened": uneven}
    return (flatten_illumination(grey, shade) if uneven else grey), record


def preprocess(
    image: Image.Image, config: PreprocessConfig, known_skew: float | None = None
) -> tuple[Image.Image, dict[str, Any]]:
    """The page as Tesseract should see it, and a record of every step applied. ``known_skew``
    (from ``guess_quarter_turn``) saves the deskew step its search."""
    grey = to_grey(image)
    record: dict[str, Any] = {"steps": list(config.steps)}
    if "illumination" in config.steps:
        grey, lighting = even_out_lighting(grey)
        record.update(lighting)
    if "orientation" in config.steps:
        orientation = detect_orientation(grey)
        record.update(orientation_record(orientation))
        record["orientation_rotated"] = orientation.rotate if orientation else 0
        if orientation and orientation.rotate:
            grey = rotate_quarter(grey, orientation.rotate)
    if "deskew" in config.steps:
        angle = estimate_skew(grey) if known_skew is None else known_skew
        record["deskew_degrees"] = round(angle, 2)
        if abs(angle) >= MIN_DESKEW_DEGREES:
            grey = rotate_by(grey, angle)
    if "upscale" in config.steps:
        height = page_text_height(grey)
        factor = 1.0
        if height is not None and height < MIN_TEXT_HEIGHT:
            factor = min(MAX_UPSCALE, UPSCALED_TEXT_HEIGHT / height)
            grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        record["text_height_px"] = round(height, 1) if height is not None else None
        record["upscale_factor"] = round(factor, 2)
    if "denoise" in config.steps:
        grey = cv2.fastNlMeansDenoising(grey, None, h=12, templateWindowSize=7, searchWindowSize=21)
        record["denoise"] = "non-local means h=12"
    if "contrast" in config.steps:
        grey = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey)
        record["contrast"] = "CLAHE clip=2"
    if "binarize" in config.steps:
        grey = cv2.adaptiveThreshold(
            grey, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 15
        )
        record["binarize"] = "adaptive gaussian 31/15"
    return Image.fromarray(grey), record
