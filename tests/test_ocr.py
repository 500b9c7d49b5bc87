"""Real Tesseract and OpenCV on real scans and rendered pages: preprocessing and error rates."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from docflow_assets.ocr.engines import TesseractEngine
from docflow_assets.ocr.evaluation import character_error_rate, word_error_rate
from docflow_assets.ocr.pipeline import OcrOptions, ocr_document
from docflow_assets.ocr.preprocess import (
    PreprocessConfig,
    estimate_skew,
    preprocess,
    text_height,
    to_grey,
)

UPRIGHT_ONLY = PreprocessConfig(("orientation", "deskew"))


def test_error_rates_count_edits_against_the_reference() -> None:
    assert character_error_rate("invoice total", "invoice total") == 0.0
    assert character_error_rate("abcd", "abxd") == pytest.approx(0.25)
    assert word_error_rate("total due now", "total dew now") == pytest.approx(1 / 3)
    assert character_error_rate("a  b\n c", "a b c") == 0.0  # whitespace is layout, not text


@pytest.mark.parametrize(
    ("scan", "rotation"),
    [
        ("phototest.tif", 0),
        ("phototest-rotated-L.png", 90),
        ("phototest-rotated-R.png", 270),
        ("phototest-rotated-180.png", 180),
    ],
)
def test_orientation_is_detected_and_the_page_read_upright(
    real_scans: Path, scan: str, rotation: int
) -> None:
    truth = (real_scans / "phototest.txt").read_text()
    page, record = preprocess(Image.open(real_scans / scan), UPRIGHT_ONLY)
    assert record["orientation_rotated"] == rotation
    text = TesseractEngine().read(page, "eng").text
    assert character_error_rate(truth, text) < 0.05


def test_a_page_rotated_180_reads_badly_without_preprocessing(real_scans: Path) -> None:
    truth = (real_scans / "phototest.txt").read_text()
    raw = TesseractEngine().read(Image.open(real_scans / "phototest-rotated-180.png"), "eng").text
    assert character_error_rate(truth, raw) > 0.5


@pytest.mark.parametrize("angle", [3.0, -2.0])
def test_small_skew_is_measured_and_straightened(real_scans: Path, angle: float) -> None:
    truth = (real_scans / "phototest.txt").read_text()
    tilted = (
        Image.open(real_scans / "phototest.tif")
        .convert("L")
        .rotate(angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    )
    assert estimate_skew(to_grey(tilted)) == pytest.approx(-angle, abs=0.3)
    page, record = preprocess(tilted, PreprocessConfig(("deskew",)))
    assert record["deskew_degrees"] == pytest.approx(-angle, abs=0.3)
    assert abs(estimate_skew(to_grey(page))) <= 0.3
    assert character_error_rate(truth, TesseractEngine().read(page, "eng").text) < 0.05


def test_small_text_is_upscaled(real_scans: Path) -> None:
    page = Image.open(real_scans / "phototest.tif").convert("L")
    small = page.resize((page.width // 3, page.height // 3), Image.Resampling.LANCZOS)
    before = text_height(to_grey(small))
    bigger, record = preprocess(small, PreprocessConfig(("upscale",)))
    assert before is not None and record["upscale_factor"] > 1.2
    assert bigger.width == pytest.approx(small.width * record["upscale_factor"], rel=0.01)


def test_denoise_contrast_and_binarize_run_in_order_and_are_recorded(real_scans: Path) -> None:
    config = PreprocessConfig.parse("binarize, denoise, contrast")
    assert config.steps == ("denoise", "contrast", "binarize")
    page, record = preprocess(Image.open(real_scans / "phototest.tif"), config)
    assert set(record) >= {"denoise", "contrast", "binarize"}
    assert set(page.getdata()) <= {0, 255}
    with pytest.raises(ValueError, match="sharpen"):
        PreprocessConfig.parse("deskew,sharpen")


def test_every_page_of_a_real_multipage_pdf_is_read_in_order(real_scans: Path) -> None:
    data = (real_scans / "multipage.pdf").read_bytes()
    pages = ocr_document(data, "application/pdf", OcrOptions(dpi=100))
    assert len(pages) >= 2
    assert all(page.preprocessing["steps"] == ["orientation", "deskew"] for page in pages)
    assert sum(len(page.words) for page in pages) > 20


def test_multipage_tiff_pages_keep_their_order() -> None:
    import io

    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 40)
    frames = []
    for word in ("FIRST", "SECOND", "THIRD"):
        frame = Image.new("L", (800, 300), 255)
        ImageDraw.Draw(frame).text((60, 110), f"PAGE {word}", font=font, fill=0)
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    pages = ocr_document(
        buffer.getvalue(), "image/tiff", OcrOptions(preprocessing=PreprocessConfig(()))
    )
    assert [page.text.split()[-1] for page in pages] == ["FIRST", "SECOND", "THIRD"]


def test_ocr_eval_command_prints_error_rates_per_mode(real_scans: Path, tmp_path: Path) -> None:
    import shutil

    from click.testing import CliRunner

    from docflow_assets.cli import main

    shutil.copy(real_scans / "phototest-rotated-180.png", tmp_path / "upside-down.png")
    shutil.copy(real_scans / "phototest.txt", tmp_path / "upside-down.gt.txt")
    result = CliRunner().invoke(main, ["ocr-eval", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
        for line in result.output.splitlines()
        if line.startswith("│")
    }
    raw_cer = float(rows["tesseract (no preprocessing)"][1])
    fixed_cer = float(rows["tesseract (orientation,deskew)"][1])
    assert raw_cer > 0.5 and fixed_cer < 0.05


def two_line_page() -> tuple[Image.Image, str]:
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 28)
    lines = ["Invoice number 4821 for consulting", "Payment due within thirty days"]
    page = Image.new("L", (900, 180), 255)
    draw = ImageDraw.Draw(page)
    for index, line in enumerate(lines):
        draw.text((30, 20 + 80 * index), line, font=font, fill=0)
    return page, "\n".join(lines)


class CountingEasyOcr:
    """The real EasyOCR engine, counting how often the cascade calls it."""

    def __init__(self) -> None:
        from docflow_assets.ocr.easyocr_engine import EasyOcrEngine

        self.engine = EasyOcrEngine()
        self.calls = 0

    def read_line(self, crop, language):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.engine.read_line(crop, language)


def test_cascade_skips_easyocr_on_a_clean_page() -> None:
    from docflow_assets.ocr.cascade import cascade

    page, _ = two_line_page()
    tesseract = TesseractEngine().read(page, "eng")
    counting = CountingEasyOcr()
    result = cascade(page, tesseract, threshold=0.6, engine=counting)  # type: ignore[arg-type]
    assert counting.calls == 0
    assert result.text == tesseract.text
    assert result.preprocessing["lines_reread_by_easyocr"] == 0


@pytest.mark.slow
def test_cascade_rereads_unsure_lines_with_offline_easyocr() -> None:
    from docflow_assets.ocr.cascade import cascade

    page, truth = two_line_page()
    tesseract = TesseractEngine().read(page, "eng")
    counting = CountingEasyOcr()
    # A threshold no line reaches sends every line to EasyOCR.
    result = cascade(page, tesseract, threshold=0.999, engine=counting)  # type: ignore[arg-type]
    assert counting.calls == 2
    assert result.preprocessing["lines_reread_by_easyocr"] == 2
    assert character_error_rate(truth, result.text) < 0.05


@pytest.mark.slow
def test_easyocr_reads_a_page_with_offline_weights() -> None:
    from docflow_assets.ocr.easyocr_engine import EasyOcrEngine

    page, truth = two_line_page()
    result = EasyOcrEngine().read(page, "eng")
    assert result.engine == "easyocr" and result.words
    assert all(0 <= word.confidence <= 1 for word in result.words)
    assert character_error_rate(truth, result.text) < 0.1
    from docflow_assets.ocr.engines import UnsupportedLanguage

    with pytest.raises(UnsupportedLanguage, match="rus"):
        EasyOcrEngine().read(page, "rus")
