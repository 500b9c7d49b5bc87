"""A hard text-classification set: classes that share most of their vocabulary, OCR-like
character noise and few labels per class (rendered documents score 1.000 with any model)."""

from __future__ import annotations

import numpy as np

COMMON_WORDS = (
    "the of and to in for on with by from date page total number please office "
    "our your this that will be are is at as we you it an or not all any "
    "report account reference department manager letter dear regards "
    "sincerely received copy file note client"
)
COMMON = tuple(COMMON_WORDS.split())
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def hard_corpus(
    classes: int, per_class: int, seed: int, noise: float = 0.08
) -> tuple[list[str], list[str]]:
    """``per_class`` texts of each class; the classes are the same for every ``seed``."""
    shape = np.random.default_rng(1000 + classes)
    vocabulary = ["".join(shape.choice(list(LETTERS), shape.integers(4, 9))) for _ in range(600)]
    keywords = [shape.choice(vocabulary, 8, replace=False) for _ in range(classes)]
    leaning = [shape.dirichlet(np.full(len(vocabulary), 0.3)) for _ in range(classes)]
    shared = shape.dirichlet(np.full(len(vocabulary), 0.3))
    draw = np.random.default_rng(seed)
    texts, labels = [], []
    for label in range(classes):
        mixed = 0.5 * leaning[label] + 0.5 * shared
        for _ in range(per_class):
            words = []
            for _ in range(int(draw.integers(15, 120))):
                kind = draw.random()
                if kind < 0.06:
                    words.append(str(draw.choice(keywords[label])))
                elif kind < 0.35:
                    words.append(str(draw.choice(COMMON)))
                else:
                    pool = mixed if kind < 0.6 else shared
                    words.append(vocabulary[draw.choice(len(vocabulary), p=pool)])
            characters = list(" ".join(words))
            for index, character in enumerate(characters):
                if character != " " and draw.random() < noise:
                    characters[index] = str(draw.choice(list(LETTERS + "0123456789.,;")))
            texts.append("".join(characters))
            labels.append(f"class{label:02d}")
    return texts, labels
