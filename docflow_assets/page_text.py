"""What OCR reads off a page: words with boxes and confidences, and the page's text. A neutral
module, so the store records pages without importing the OCR engines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    text: str
    box: tuple[int, int, int, int]  # left, top, width, height in page pixels
    confidence: float
    line: int = 0
    block: int = 0  # Tesseract's layout block (a column or a table cell group)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Word:
        """A word as ``PageText.words_as_dicts`` stored it."""
        return cls(**{**stored, "box": tuple(stored["box"])})


@dataclass
class PageText:
    engine: str
    language: str
    words: list[Word]
    seconds: float
    preprocessing: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    # Share of the words of three letters or more found in the language's dictionary (Tesseract
    # only; None where it read fewer than ten such words): a page read the right way up is
    # mostly words of its language, one read sideways or upside down is not.
    dictionary_share: float | None = None

    @property
    def mean_confidence(self) -> float:
        if not self.words:
            return 0.0
        return sum(word.confidence for word in self.words) / len(self.words)

    def words_as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(word) for word in self.words]


def text_from_words(words: list[Word]) -> str:
    """Words joined by spaces within a line, lines by newlines, lines in number order."""
    lines: dict[int, list[str]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word.text)
    return "\n".join(" ".join(lines[number]) for number in sorted(lines))
