"""PP-OCRv6 (small detection and recognition models) run by OpenVINO through ``rapidocr``.

The models ship inside the ``rapidocr`` wheel as ONNX and are named by path, so nothing is ever
downloaded; OpenVINO compiles them when an engine is made. On this machine's CPU (AVX2) it read
the 63 real receipts at 0.71 CPU-s a receipt against 1.95 for onnxruntime, with the same word
F1 (0.611). One inference thread per engine: on 2 cores two threads were slower than one, so
the pipeline parallelises across pages and documents instead, and that thread is not pinned:
OpenVINO pins it to a core by default, the same core in every process, so two OCR processes
reading with PP-OCR took turns on one core while the other stood idle (16 office scans on two
processes: 13.4 s pinned, 7.3 s not, the same CPU time). The direction classifier stays
off: pages reach the engine upright (same word F1 on receipts, 10-15% faster). Detection sees
the page at most 960 px on its longer side and never enlarged (rapidocr's default enlarges the
shorter side to 736 px): on half of the real receipts word F1 0.612 -> 0.617 at 27% less time;
800 and 1280 px scored the same.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from docflow_assets.ocr.engines import UnsupportedLanguage, milliseconds_left
from docflow_assets.ocr.reading_order import Line, reading_order
from docflow_assets.page_text import PageText, Word, text_from_words

# Tesseract language codes of the Latin-script languages PP-OCRv6's multilingual models read.
PPOCR_LANGUAGES = frozenset(
    {"eng", "deu", "fra", "spa", "ita", "por", "nld", "pol", "ces", "slk", "slv", "hrv", "hun"}
    | {"ron", "swe", "dan", "nor", "fin", "est", "lav", "lit", "tur", "cat", "glg", "eus", "isl"}
    | {"gle", "cym", "lat", "msa", "ind", "vie", "tgl", "afr", "sqi", "mlt", "swa", "uzb", "aze"}
)
DETECTION_MAX_SIDE = 960
_engines = threading.local()


def _unsupported(language: str) -> list[str]:
    return [part for part in language.split("+") if part not in PPOCR_LANGUAGES]


def ppocr_supports(language: str) -> bool:
    return not _unsupported(language)


def check_ppocr_language(language: str) -> None:
    if unsupported := _unsupported(language):
        raise UnsupportedLanguage(
            f"PP-OCR reads Latin-script languages only, not {', '.join(unsupported)}"
        )


def model_paths() -> tuple[Path, Path]:
    """The detection and recognition models inside the installed ``rapidocr`` package."""
    import rapidocr

    folder = Path(rapidocr.__file__).parent / "models"
    return folder / "PP-OCRv6_det_small.onnx", folder / "PP-OCRv6_rec_small.onnx"


def rapid_ocr() -> Any:
    """One loaded engine per thread (the models compile in under a second)."""
    engine = getattr(_engines, "engine", None)
    if engine is None:
        from rapidocr import EngineType, RapidOCR

        detection, recognition = model_paths()
        engine = RapidOCR(
            params={
                "Global.use_cls": False,
                "Global.log_level": "error",
                "EngineConfig.openvino.inference_num_threads": 1,
                "EngineConfig.openvino.enable_cpu_pinning": False,
                "Det.engine_type": EngineType.OPENVINO,
                "Det.model_path": str(detection),
                "Det.limit_type": "max",
                "Det.limit_side_len": DETECTION_MAX_SIDE,
                "Rec.engine_type": EngineType.OPENVINO,
                "Rec.model_path": str(recognition),
            }
        )
        _engines.engine = engine
    return engine


def _bgr(image: Image.Image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _box(points: Any) -> tuple[int, int, int, int]:
    xs = [int(point[0]) for point in points]
    ys = [int(point[1]) for point in points]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


class PpOcrEngine:
    name = "ppocr"

    def read(self, image: Image.Image, language: str) -> PageText:
        """Detect the page's text lines and recognise each; words keep their own boxes and
        the line's recognition score."""
        check_ppocr_language(language)
        milliseconds_left()  # a page is not begun past the deadline
        started = time.perf_counter()
        output = rapid_ocr()(_bgr(image), return_word_box=True)
        lines = [
            Line(
                _box(points),
                [
                    (str(text).strip(), float(score), _box(word_points))
                    for text, score, word_points in words
                    if str(text).strip()
                ],
            )
            for points, words in zip(
                output.boxes if output.boxes is not None else [],
                output.word_results or [],
                strict=False,
            )
        ]
        words: list[Word] = []
        for number, (block, line) in enumerate(reading_order([ln for ln in lines if ln.words])):
            words += [Word(text, box, score, number, block) for text, score, box in line.words]
        return PageText(
            self.name,
            language,
            words,
            time.perf_counter() - started,
            text=text_from_words(words),
        )
