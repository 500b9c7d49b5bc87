"""hOCR 1.2 (XHTML): pages, content areas, paragraphs, lines and words with their boxes and
confidences, as OCRmyPDF, hocr-tools and archives read it."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from lxml import etree
from lxml.builder import ElementMaker

from docflow_assets.exports.geometry import PageWords
from docflow_assets.page_text import Word

XHTML = "http://www.w3.org/1999/xhtml"
DOCTYPE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
)
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word"


def bounds(words: Sequence[Word]) -> tuple[int, int, int, int]:
    """left, top, right, bottom around the words."""
    return (
        min(word.box[0] for word in words),
        min(word.box[1] for word in words),
        max(word.box[0] + word.box[2] for word in words),
        max(word.box[1] + word.box[3] for word in words),
    )


def _bbox(box: tuple[int, int, int, int]) -> str:
    return "bbox {} {} {} {}".format(*box)


def text_angle(lines: Sequence[Sequence[Word]]) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) the page's lines run at, from where their
    first and last words stand: Tesseract reads a page on its side as vertical lines, and a
    page OCR turned upright reads that way on the original."""
    across = down = 0.0
    for line in lines:
        if len(line) < 2:
            continue
        first, last = line[0].box, line[-1].box
        across += (last[0] + last[2] / 2) - (first[0] + first[2] / 2)
        down += (last[1] + last[3] / 2) - (first[1] + first[3] / 2)
    if abs(across) >= abs(down):
        return 0 if across >= 0 else 180
    return 90 if down > 0 else 270


def blocks_and_lines(words: Sequence[Word]) -> list[list[list[Word]]]:
    """The words grouped into blocks of lines, in reading order (as recorded)."""
    return [
        [list(line) for _, line in groupby(block, key=lambda word: word.line)]
        for _, block in groupby(words, key=lambda word: word.block)
    ]


def to_hocr(pages: Sequence[PageWords], title: str) -> bytes:
    """The document as one hOCR file, a ``div.ocr_page`` per page in the original's pixels."""
    tag = ElementMaker(namespace=XHTML, nsmap={None: XHTML})
    body = tag.body()
    for number, page in enumerate(pages, start=1):
        width, height = page.size
        page_element = tag.div(
            {
                "class": "ocr_page",
                "id": f"page_{number}",
                "title": f'image "{title}"; {_bbox((0, 0, width, height))}; ppageno {number - 1}',
                "lang": page.language,
            }
        )
        blocks = blocks_and_lines(page.words)
        angle = text_angle([line for block in blocks for line in block])
        for block_number, block in enumerate(blocks, start=1):
            block_box = bounds([word for line in block for word in line])
            name = f"{number}_{block_number}"
            paragraph = tag.p({"class": "ocr_par", "id": f"par_{name}", "title": _bbox(block_box)})
            for line_number, line in enumerate(block, start=1):
                line_id = f"{name}_{line_number}"
                line_title = _bbox(bounds(line))
                if angle:
                    line_title += f"; textangle {angle}"
                line_element = tag.span(
                    {"class": "ocr_line", "id": f"line_{line_id}", "title": line_title}
                )
                for word_number, word in enumerate(line, start=1):
                    left, top, word_width, word_height = word.box
                    confidence = round(100 * word.confidence)
                    box = (left, top, left + word_width, top + word_height)
                    word_element = tag.span(
                        {
                            "class": "ocrx_word",
                            "id": f"word_{line_id}_{word_number}",
                            "title": f"{_bbox(box)}; x_wconf {confidence}",
                        }
                    )
                    word_element.text = word.text
                    line_element.append(word_element)
                paragraph.append(line_element)
            area = tag.div({"class": "ocr_carea", "id": f"block_{name}", "title": _bbox(block_box)})
            area.append(paragraph)
            page_element.append(area)
        body.append(page_element)
    engines = ", ".join(sorted({page.engine for page in pages}))
    document = tag.html(
        tag.head(
            tag.title(title),
            tag.meta({"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"}),
            tag.meta({"name": "ocr-system", "content": f"Docflow ({engines})"}),
            tag.meta({"name": "ocr-capabilities", "content": CAPABILITIES}),
        ),
        body,
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", doctype=DOCTYPE)
