"""OpenCV page preprocessing before OCR. Each step is switchable and reports what it did.

Order matters: orientation and deskew first (they need the page as scanned), then resolution,
then denoising before contrast and binarisation (binarising noise freezes it into the glyphs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytesseract
from PIL import Image

STEPS = ("orientation", "deskew", "upscale", "denoise", "contrast", "binarize")
TARGET_TEXT_HEIGHT = 28  # px of a typical lowercase-to-capital glyph that Tesseract reads best
MAX_UPSCALE = 3.0
MIN_DESKEW_DEGREES = 0.2
GUESS_WIDTH = 1200  # px: enough to see ascenders and descenders of 10-point text
MIN_LINE_ROWS = 6  # thinner ink runs are rules, dots or noise, not text lines
CLEAR_EVIDENCE = 1.25  # how far one way of reading a page's profile must beat the other


@dataclass(frozen=True)
class PreprocessConfig:
    steps: tuple[str, ...] = ("orientation", "deskew")

    @classmethod
    def parse(cls, spec: str) -> PreprocessConfig:
        steps = tuple(step.strip() for step in spec.split(",") if step.strip())
        unknown = [step for step in steps if step not in STEPS]
        if unknown:
            raise ValueError(f"unknown preprocessing step(s) {unknown}; known: {', '.join(STEPS)}")
        return cls(tuple(step for step in STEPS if step in steps))

    def without(self, step: str) -> PreprocessConfig:
        return PreprocessConfig(tuple(kept for kept in self.steps if kept != step))


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
        return {"orientation_rotated": None}
    return {
        "orientation_rotated": orientation.rotate,
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


def guess_quarter_turn(grey: np.ndarray) -> tuple[int, float]:
    """Clockwise degrees (0/90/180/270) that probably turn the page upright, and the page's skew
    once turned, in milliseconds and without Tesseract: text lines run across (the row profile
    is sharper than the column profile at their best small angles) and ascenders outweigh
    descenders. A page not clearly turned (little text, charts, a script without that asymmetry)
    counts as upright. A wrong guess costs time, not text: the first reading is then unsure and
    Tesseract's orientation pass decides."""
    scale = min(1.0, GUESS_WIDTH / max(grey.shape))
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
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


def preprocess(
    image: Image.Image, config: PreprocessConfig, known_skew: float | None = None
) -> tuple[Image.Image, dict[str, Any]]:
    """The page as Tesseract should see it, and a record of every step applied. ``known_skew``
    (from ``guess_quarter_turn``) saves the deskew step its search."""
    grey = to_grey(image)
    record: dict[str, Any] = {"steps": list(config.steps)}
    if "orientation" in config.steps:
        orientation = detect_orientation(grey)
        record.update(orientation_record(orientation))
        if orientation and orientation.rotate:
            grey = rotate_quarter(grey, orientation.rotate)
    if "deskew" in config.steps:
        angle = estimate_skew(grey) if known_skew is None else known_skew
        record["deskew_degrees"] = round(angle, 2)
        if abs(angle) >= MIN_DESKEW_DEGREES:
            grey = rotate_by(grey, angle)
    if "upscale" in config.steps:
        height = text_height(grey)
        factor = min(MAX_UPSCALE, TARGET_TEXT_HEIGHT / height) if height else 1.0
        record["upscale_factor"] = round(factor, 2) if factor > 1.2 else 1.0
        if factor > 1.2:
            grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
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
