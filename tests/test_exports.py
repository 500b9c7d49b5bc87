"""What people take away, checked the way a person would: a searchable PDF whose text a PDF
reader extracts where the words stand and which renders like the original, and hOCR and ALTO
that parse and carry the stored words with their boxes."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from litestar.testing import TestClient
from lxml import etree
from PIL import Image

from docflow_assets.document_service import DocumentService, NotReadYet
from docflow_assets.exports.formats import export_reading
from docflow_assets.exports.searchable_pdf import pages_with_text
from docflow_assets.ocr.pages import iter_page_images, page_sizes
from docflow_assets.page_text import PageText, Word
from docflow_assets.settings import DocflowSettings
from tests.conftest import REAL_SCANS

# A page turned on its side (OCR turns it upright: boxes must come back), and a PDF of pages.
SCANS = ("phototest-rotated-R.png", "multipage.pdf", "phototest.tif")
XHTML = "{http://www.w3.org/1999/xhtml}"
ALTO = "{http://www.loc.gov/standards/alto/ns-v4#}"
SCHEMAS = Path(__file__).parent / "data" / "schemas"
XLINK_SCHEMA = "http://www.loc.gov/standards/xlink/xlink.xsd"


class PinnedSchemas(etree.Resolver):
    """The ALTO schema imports XLink's from the Library of Congress: read the pinned copy."""

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        if system_url == XLINK_SCHEMA:
            return self.resolve_filename(str(SCHEMAS / "xlink.xsd"), context)
        return None


@pytest.fixture(scope="module")
def alto_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(PinnedSchemas())
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "alto-4-4.xsd"), parser))


@dataclass
class ReadHome:
    settings: DocflowSettings
    service: DocumentService
    ids: dict[str, int]


@pytest.fixture(scope="module")
def read_home(tmp_path_factory: pytest.TempPathFactory) -> ReadHome:
    home = tmp_path_factory.mktemp("exports")
    settings = DocflowSettings(home=home / "home", ocr_mode="tesseract", ocr_workers=1)
    service = DocumentService.from_settings(settings)
    ids = {}
    for name in SCANS:
        with (REAL_SCANS / name).open("rb") as handle:
            ids[name] = service.ingest(handle, name).document.id
    day = service.document(ids[SCANS[0]]).upload_date
    report = service.read(day, list(ids.values()))
    assert report.documents == len(SCANS)
    return ReadHome(settings, service, ids)


def _stored_pages(home: ReadHome, name: str) -> list[PageText]:
    _, rows = home.service.document_with_pages(home.ids[name])
    return [
        PageText(
            row.engine,
            row.language,
            [Word.from_dict(word) for word in row.words],
            row.seconds,
            dict(row.preprocessing),
            row.text,
        )
        for row in rows
    ]


def _words_on_original(home: ReadHome, name: str) -> list[list[Word]]:
    """The stored words with their boxes on the original page, as the exports place them."""
    from docflow_assets.exports.formats import page_words

    data = (REAL_SCANS / name).read_bytes()
    document = home.service.document(home.ids[name])
    sizes = page_sizes(data, document.content_type)
    return [page.words for page in page_words(_stored_pages(home, name), sizes)]


def _extracted_words(text_page: pdfium.PdfTextPage) -> dict[str, list[list[tuple[float, ...]]]]:
    """The words a PDF reader extracts, each with its characters' boxes (PDF points)."""
    words: dict[str, list[list[tuple[float, ...]]]] = {}
    letters: list[str] = []
    boxes: list[tuple[float, ...]] = []
    for index in range(text_page.count_chars() + 1):
        letter = text_page.get_text_range(index, 1) if index < text_page.count_chars() else " "
        if letter.strip():
            letters.append(letter)
            boxes.append(tuple(text_page.get_charbox(index)))
        elif letters:
            words.setdefault("".join(letters), []).append(boxes)
            letters, boxes = [], []
    return words


@pytest.mark.parametrize("name", SCANS)
def test_the_pdf_text_is_the_stored_words_each_where_the_word_stands(
    read_home: ReadHome, name: str
) -> None:
    export = read_home.service.export(read_home.ids[name], "pdf")
    assert export.media_type == "application/pdf" and export.filename.endswith(".pdf")
    pdf = pdfium.PdfDocument(export.content)
    pages = _words_on_original(read_home, name)
    assert len(pdf) == len(pages)
    data = (REAL_SCANS / name).read_bytes()
    sizes = page_sizes(data, read_home.service.document(read_home.ids[name]).content_type)
    tolerance = 2.0  # points
    already_searchable = pages_with_text(data) if name.endswith(".pdf") else set()
    for number, (page, words, (width_px, _)) in enumerate(zip(pdf, pages, sizes, strict=True)):
        if number in already_searchable:
            continue  # test_a_pdf_keeps_its_own_pages
        extracted = _extracted_words(page.get_textpage())
        width_pt, height_pt = page.get_size()
        to_points = width_pt / width_px
        placed = 0
        for word in words:
            left, top, width, height = (value * to_points for value in word.box)
            # PDF space has its origin at the bottom left.
            bottom, upper = height_pt - (top + height), height_pt - top
            placed += any(
                all(
                    left - tolerance <= (x0 + x1) / 2 <= left + width + tolerance
                    and bottom - tolerance <= (y0 + y1) / 2 <= upper + tolerance
                    for x0, y0, x1, y1 in boxes
                )
                for boxes in extracted.get(word.text.replace(" ", ""), [])
            )
        # Every stored word is text a reader extracts, within the word's box on the page.
        assert words and placed >= 0.95 * len(words), (placed, len(words))


@pytest.mark.parametrize("name", SCANS)
def test_the_pdf_renders_like_the_original(read_home: ReadHome, name: str) -> None:
    data = (REAL_SCANS / name).read_bytes()
    document = read_home.service.document(read_home.ids[name])
    pdf = pdfium.PdfDocument(read_home.service.export(document.id, "pdf").content)
    originals = list(iter_page_images(data, document.content_type, 100))
    for page, original in zip(pdf, originals, strict=True):
        if document.content_type == "application/pdf":
            expected = original
            rendered = page.render(scale=100 / 72).to_pil()
        else:
            expected = original
            rendered = page.render(scale=original.width / page.get_width()).to_pil()
        rendered = rendered.convert("L").resize(expected.size)
        difference = np.abs(
            np.asarray(rendered, dtype=np.int16) - np.asarray(expected.convert("L"), dtype=np.int16)
        )
        # The invisible text layer draws nothing: the page is the original's, pixel for pixel
        # but for resampling.
        assert difference.mean() < 3.0


def test_a_pdf_keeps_its_own_pages_and_the_text_a_page_had(read_home: ReadHome) -> None:
    data = (REAL_SCANS / "multipage.pdf").read_bytes()
    original = pdfium.PdfDocument(data)
    exported = pdfium.PdfDocument(
        read_home.service.export(read_home.ids["multipage.pdf"], "pdf").content
    )
    assert [page.get_size() for page in exported] == [page.get_size() for page in original]
    had_text = pages_with_text(data)
    assert had_text and len(had_text) < len(original)  # the set has both kinds
    for number in range(len(original)):
        text = exported[number].get_textpage().get_text_range()
        if number in had_text:
            assert text == original[number].get_textpage().get_text_range()
        else:
            assert text.strip()


def test_hocr_is_xhtml_with_pages_lines_and_words_with_boxes_and_confidences(
    read_home: ReadHome,
) -> None:
    name = "phototest-rotated-R.png"
    export = read_home.service.export(read_home.ids[name], "hocr")
    root = etree.fromstring(export.content)  # well-formed XML, so XHTML a parser can take
    assert root.tag == f"{XHTML}html"
    classes = {element.get("class") for element in root.iter()}
    assert {"ocr_page", "ocr_line", "ocrx_word"} <= classes
    words = [element for element in root.iter() if element.get("class") == "ocrx_word"]
    stored = [word for page in _words_on_original(read_home, name) for word in page]
    assert [element.text for element in words] == [word.text for word in stored]
    for element, word in zip(words, stored, strict=True):
        match = re.fullmatch(r"bbox (\d+) (\d+) (\d+) (\d+); x_wconf (\d+)", element.get("title"))
        assert match is not None
        left, top, right, bottom, confidence = map(int, match.groups())
        assert (left, top, right - left, bottom - top) == word.box
        assert confidence == round(100 * word.confidence)
    # The page is the original's, on its side: its lines run down the page.
    page = next(element for element in root.iter() if element.get("class") == "ocr_page")
    size = re.search(r"bbox 0 0 (\d+) (\d+)", page.get("title") or "")
    assert size is not None and tuple(map(int, size.groups())) == Image.open(REAL_SCANS / name).size
    lines = [element for element in root.iter() if element.get("class") == "ocr_line"]
    assert all((line.get("title") or "").endswith("; textangle 90") for line in lines)


def test_alto_carries_every_word_with_its_position_and_confidence(read_home: ReadHome) -> None:
    name = "multipage.pdf"
    root = etree.fromstring(read_home.service.export(read_home.ids[name], "alto").content)
    assert root.tag == f"{ALTO}alto"
    assert root.findtext(f"{ALTO}Description/{ALTO}MeasurementUnit") == "pixel"
    pages = root.findall(f"{ALTO}Layout/{ALTO}Page")
    stored = _words_on_original(read_home, name)
    assert len(pages) == len(stored) >= 2
    for page, words in zip(pages, stored, strict=True):
        strings = page.findall(f".//{ALTO}String")
        assert [string.get("CONTENT") for string in strings] == [word.text for word in words]
        width, height = int(page.get("WIDTH")), int(page.get("HEIGHT"))
        for string, word in zip(strings, words, strict=True):
            box = tuple(int(string.get(key)) for key in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
            assert box == word.box
            assert box[0] + box[2] <= width and box[1] + box[3] <= height
            assert 0.0 <= float(string.get("WC")) <= 1.0


def test_page_sizes_are_recorded_as_read_so_boxes_need_no_original(
    read_home: ReadHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = read_home.settings
    recorded = {}
    for name in SCANS:
        document, rows = read_home.service.document_with_pages(read_home.ids[name])
        expected = page_sizes(
            (REAL_SCANS / name).read_bytes(),
            document.content_type,
            settings.render_dpi,
            settings.max_image_pixels,
        )
        sizes = [tuple(row.preprocessing["page_size"]) for row in rows]
        assert len(sizes) == len(expected)
        for size, computed in zip(sizes, expected, strict=True):  # pdfium rounds its render
            assert abs(size[0] - computed[0]) <= 1 and abs(size[1] - computed[1]) <= 1
        recorded[name] = sizes

    def no_original(key: str) -> bytes:
        raise AssertionError(f"the original {key} was fetched")

    monkeypatch.setattr(read_home.service.store, "get_bytes", no_original)
    for name in SCANS:
        pages = read_home.service.words_on_pages(read_home.ids[name])
        assert [page.size for page in pages] == recorded[name]
        assert any(page.words for page in pages)


@pytest.mark.parametrize("name", SCANS)
def test_alto_is_valid_against_the_alto_v4_schema(
    read_home: ReadHome, alto_schema: etree.XMLSchema, name: str
) -> None:
    alto = etree.fromstring(read_home.service.export(read_home.ids[name], "alto").content)
    assert alto.findall(f".//{ALTO}String"), "the document has words to validate"
    assert alto_schema.validate(alto), alto_schema.error_log


def test_the_alto_schema_rejects_what_breaks_it(
    read_home: ReadHome, alto_schema: etree.XMLSchema
) -> None:
    """The pinned schema is really checked: a String without its text fails it."""
    alto = etree.fromstring(
        read_home.service.export(read_home.ids["phototest.tif"], "alto").content
    )
    string = alto.find(f".//{ALTO}String")
    assert string is not None
    del string.attrib["CONTENT"]
    assert not alto_schema.validate(alto)
    assert "CONTENT" in str(alto_schema.error_log)


def test_boxes_of_an_enlarged_page_come_back_to_the_original_scale() -> None:
    enlarged = PageText(
        "tesseract",
        "eng",
        [Word("Invoice", (300, 150, 600, 90), 0.9)],
        0.1,
        {"upscale_factor": 3.0, "orientation_rotated": 0, "deskew_degrees": 0.0},
    )
    scan = io.BytesIO()
    Image.new("L", (800, 600), 255).save(scan, format="PNG")
    alto = export_reading("alto", scan.getvalue(), "image/png", [enlarged], [(800, 600)], "a.png")
    string = etree.fromstring(alto.content).find(f".//{ALTO}String")
    assert string is not None
    assert [string.get(key) for key in ("HPOS", "VPOS", "WIDTH", "HEIGHT")] == [
        "100",
        "50",
        "200",
        "30",
    ]


def test_exports_through_the_api_and_before_ocr(read_home: ReadHome, tmp_path: Path) -> None:
    from docflow_api.app import create_app

    document_id = read_home.ids["phototest.tif"]
    with TestClient(app=create_app(read_home.settings)) as client:
        pdf = client.get(f"/document/{document_id}/pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert "phototest.pdf" in pdf.headers["content-disposition"]
        assert "quick brown" in pdfium.PdfDocument(pdf.content)[0].get_textpage().get_text_range()
        alto = client.get(f"/document/{document_id}/ocr", params={"format": "alto"})
        assert alto.status_code == 200 and alto.content.startswith(b"<?xml")
        hocr = client.get(f"/document/{document_id}/ocr", params={"format": "hocr"})
        assert hocr.status_code == 200 and b"ocrx_word" in hocr.content
        unknown = client.get(f"/document/{document_id}/ocr", params={"format": "docx"})
        assert unknown.status_code == 400 and "format" in unknown.text
        assert client.get("/document/999999/pdf").status_code == 404

        scan = io.BytesIO()
        Image.new("L", (200, 100), 255).save(scan, format="PNG")
        waiting = client.post("/upload", files={"file": ("blank.png", scan.getvalue())})
        waiting_id = waiting.json()["id"]
        refused = client.get(f"/document/{waiting_id}/pdf")
        assert refused.status_code == 409
        assert f"document {waiting_id} has not been read yet" in refused.json()["detail"]
    with pytest.raises(NotReadYet):
        read_home.service.export(waiting_id, "hocr")


def test_the_cli_writes_searchable_pdfs_and_hocr(read_home: ReadHome, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from docflow_assets.cli import main

    scan = REAL_SCANS / "phototest.tif"
    env = {"DOCFLOW_HOME": str(tmp_path / "elsewhere"), "DOCFLOW_OCR_MODE": "tesseract"}
    for kind, name in (("pdf", "phototest.pdf"), ("hocr", "phototest.hocr")):
        read = CliRunner().invoke(
            main, ["ocr", str(scan), "--format", kind, "--out-dir", str(tmp_path)], env=env
        )
        assert read.exit_code == 0, read.output
        assert (tmp_path / name).is_file()
    text = pdfium.PdfDocument(tmp_path / "phototest.pdf")[0].get_textpage().get_text_range()
    assert "quick brown" in text
    assert b"ocrx_word" in (tmp_path / "phototest.hocr").read_bytes()

    home = {"DOCFLOW_HOME": str(read_home.settings.home)}
    document_id = read_home.ids["phototest.tif"]
    exported = CliRunner().invoke(
        main, ["export-pdf", str(document_id), "999999", "--out-dir", str(tmp_path)], env=home
    )
    assert exported.exit_code == 1  # one of the two does not exist, and says so
    assert "document 999999 does not exist" in exported.output
    written = tmp_path / f"{document_id}-phototest.pdf"
    assert "quick brown" in pdfium.PdfDocument(written)[0].get_textpage().get_text_range()
