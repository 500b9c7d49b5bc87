"""Word boxes back on the page as it came: OCR reads a page turned upright, levelled and
enlarged, and records its boxes there; exports lay them over the original."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from docflow_assets.ocr.preprocess import MIN_DESKEW_DEGREES
from docflow_assets.page_text import Word


@dataclass(frozen=True)
class PageWords:
    """One page's words in the pixels of the page as rasterised (``size``: width, height)."""

    size: tuple[int, int]
    words: list[Word]
    engine: str
    language: str


def _turned_back(points: np.ndarray, clockwise_degrees: int, size: tuple[int, int]) -> np.ndarray:
    """Points of a page turned clockwise by ``clockwise_degrees``, on the page before the turn
    (``size`` is that page's width and height)."""
    width, height = size
    u, v = points[:, 0], points[:, 1]
    if clockwise_degrees == 90:
        return np.stack([v, height - u], axis=1)
    if clockwise_degrees == 180:
        return np.stack([width - u, height - v], axis=1)
    if clockwise_degrees == 270:
        return np.stack([width - v, u], axis=1)
    return points


def words_on_original(
    words: Sequence[Word], preprocessing: Mapping[str, Any], size: tuple[int, int]
) -> list[Word]:
    """``words`` (boxes on the prepared page) with boxes on the original page of ``size``:
    the enlargement divided out, the levelling rotation undone, the quarter turn undone, each
    box the bounds of its turned-back corners, inside the page."""
    if not words:
        return []
    factor = float(preprocessing.get("upscale_factor") or 1.0)
    turn = int(preprocessing.get("orientation_rotated") or 0)
    angle = float(preprocessing.get("deskew_degrees") or 0.0)
    width, height = size
    turned_size = (height, width) if turn in (90, 270) else (width, height)
    corners = np.array(
        [
            corner
            for word in words
            for corner in (
                (word.box[0], word.box[1]),
                (word.box[0] + word.box[2], word.box[1]),
                (word.box[0], word.box[1] + word.box[3]),
                (word.box[0] + word.box[2], word.box[1] + word.box[3]),
            )
        ],
        dtype=np.float64,
    )
    corners /= factor
    if abs(angle) >= MIN_DESKEW_DEGREES:
        centre = (turned_size[0] / 2, turned_size[1] / 2)
        levelling = cv2.getRotationMatrix2D(centre, angle, 1.0)
        undo = cv2.invertAffineTransform(levelling)
        corners = corners @ undo[:, :2].T + undo[:, 2]
    corners = _turned_back(corners, turn, size)
    boxes = corners.reshape(len(words), 4, 2)
    lows = np.clip(np.floor(boxes.min(axis=1)), 0, [width, height]).astype(int)
    highs = np.clip(np.ceil(boxes.max(axis=1)), 0, [width, height]).astype(int)
    return [
        replace(word, box=(int(low[0]), int(low[1]), int(high[0] - low[0]), int(high[1] - low[1])))
        for word, low, high in zip(words, lows, highs, strict=True)
    ]
