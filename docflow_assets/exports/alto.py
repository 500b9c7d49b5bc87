"""ALTO v4 XML: pages, text blocks, lines and strings with their positions in pixels and word
confidences, as libraries and newspaper archives exchange OCR."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree
from lxml.builder import ElementMaker

from docflow_assets.exports.geometry import PageWords
from docflow_assets.exports.hocr import blocks_and_lines, bounds

ALTO = "http://www.loc.gov/standards/alto/ns-v4#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{ALTO} http://www.loc.gov/alto/v4/alto-4-4.xsd"


def _position(box: tuple[int, int, int, int]) -> dict[str, str]:
    left, top, right, bottom = box
    return {
        "HPOS": str(left),
        "VPOS": str(top),
        "WIDTH": str(right - left),
        "HEIGHT": str(bottom - top),
    }


def to_alto(pages: Sequence[PageWords], file_name: str) -> bytes:
    tag = ElementMaker(namespace=ALTO, nsmap={None: ALTO, "xsi": XSI})
    layout = tag.Layout()
    for number, page in enumerate(pages, start=1):
        width, height = page.size
        space = tag.PrintSpace(_position((0, 0, width, height)))
        for block_number, block in enumerate(blocks_and_lines(page.words), start=1):
            name = f"{number}_{block_number}"
            text_block = tag.TextBlock(
                {"ID": f"block_{name}", **_position(bounds([w for line in block for w in line]))}
            )
            for line_number, line in enumerate(block, start=1):
                line_id = f"{name}_{line_number}"
                text_line = tag.TextLine({"ID": f"line_{line_id}", **_position(bounds(line))})
                for word_number, word in enumerate(line, start=1):
                    if word_number > 1:
                        text_line.append(tag.SP())
                    left, top, word_width, word_height = word.box
                    text_line.append(
                        tag.String(
                            {
                                "ID": f"string_{line_id}_{word_number}",
                                "CONTENT": word.text,
                                **_position((left, top, left + word_width, top + word_height)),
                                "WC": f"{min(max(word.confidence, 0.0), 1.0):.3f}",
                            }
                        )
                    )
                text_block.append(text_line)
            space.append(text_block)
        layout.append(
            tag.Page(
                {
                    "ID": f"page_{number}",
                    "PHYSICAL_IMG_NR": str(number),
                    "WIDTH": str(width),
                    "HEIGHT": str(height),
                },
                space,
            )
        )
    document = tag.alto(
        {f"{{{XSI}}}schemaLocation": SCHEMA_LOCATION},
        tag.Description(
            tag.MeasurementUnit("pixel"),
            tag.sourceImageInformation(tag.fileName(file_name)),
        ),
        layout,
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)
