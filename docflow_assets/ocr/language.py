"""Does a page look written in the languages OCR was told to read?

Tesseract told ``eng`` reads a Russian page as Latin junk, so the text alone cannot tell; the
script that Tesseract's OSD sees in the image can. Without OSD (orientation switched off) the
letters of the text decide, which still catches a wrong non-Latin language.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from docflow_assets.page_text import PageText

LANGUAGE_SCRIPTS = {
    "eng": "Latin",
    "deu": "Latin",
    "fra": "Latin",
    "spa": "Latin",
    "ita": "Latin",
    "por": "Latin",
    "nld": "Latin",
    "pol": "Latin",
    "rus": "Cyrillic",
    "ukr": "Cyrillic",
    "bul": "Cyrillic",
    "ell": "Greek",
    "ara": "Arabic",
    "heb": "Hebrew",
}
MIN_LETTERS = 20
# OSD's script confidence under which its guess is not trusted (it is ~0 on specks).
MIN_SCRIPT_CONFIDENCE = 0.5


def expected_scripts(language: str) -> set[str]:
    return {LANGUAGE_SCRIPTS[part] for part in language.split("+") if part in LANGUAGE_SCRIPTS}


def letters_script(text: str) -> str | None:
    """The writing system most of the text's letters belong to."""
    scripts = Counter(
        unicodedata.name(character, "UNKNOWN").split(" ")[0].title()
        for character in text
        if character.isalpha()
    )
    if sum(scripts.values()) < MIN_LETTERS:
        return None
    return scripts.most_common(1)[0][0]


def page_script(page: PageText) -> str | None:
    script = page.preprocessing.get("script")
    confidence = float(page.preprocessing.get("script_confidence") or 0.0)
    if script and confidence >= MIN_SCRIPT_CONFIDENCE:
        return str(script)
    return letters_script(page.text)


def script_mismatch(script: str | None, language: str) -> bool | None:
    """True when ``script`` is none the languages use; None when either is unknown."""
    expected = expected_scripts(language)
    if not expected or script is None:
        return None
    return script not in expected


def language_mismatch(page: PageText) -> bool | None:
    """True when the page's script is none the configured languages use; None when unknown."""
    return script_mismatch(page_script(page), page.language)
