"""The serving fast paths compute exactly what scikit-learn and the torch module compute."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from docflow_assets.demo.content import DOCUMENT_CLASSES, GENERATORS
from docflow_assets.demo.render import document_rng
from docflow_assets.ml.classifier import DocumentClassifier, TfidfMlp, to_torch_sparse
from docflow_assets.ml.features import TextVectorizer, normalise_text


def corpus(seed: int, per_class: int) -> list[str]:
    return [
        "\n".join(text for _, text in GENERATORS[label](document_rng(seed, label, index)))
        for label in DOCUMENT_CLASSES
        for index in range(per_class)
    ]


def test_transform_equals_scikit_learn_tfidf() -> None:
    vectorizer = TextVectorizer().fit(corpus(1, 3))
    documents = corpus(2, 1)
    unseen = [*documents, "", "   ", "T0TAL DUE 12.00 lnvoice", "Ünïcödé — ½ naïve café"]
    ours = vectorizer.transform(unseen)
    cleaned = [normalise_text(text) for text in unseen]
    reference = sp.hstack(
        [part.transform(cleaned) for part in vectorizer.parts.values()], format="csr"
    )
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.toarray(), reference.toarray(), rtol=1e-5, atol=1e-7)
    assert ours[len(documents)].nnz == 0  # an empty text has no features


def test_numpy_forward_pass_equals_the_torch_module() -> None:
    vectorizer = TextVectorizer().fit(corpus(1, 2))
    torch.manual_seed(0)
    network = TfidfMlp(vectorizer.n_features, len(DOCUMENT_CLASSES), hidden=32)
    classifier = DocumentClassifier(vectorizer, network, list(DOCUMENT_CLASSES), {})
    features = vectorizer.transform(corpus(3, 1))
    with torch.inference_mode():
        expected = torch.softmax(network.eval()(to_torch_sparse(features)), dim=1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(features), expected, rtol=1e-4, atol=1e-6)


def test_single_text_scorer_equals_the_batch_scorer() -> None:
    vectorizer = TextVectorizer().fit(corpus(1, 2))
    torch.manual_seed(0)
    network = TfidfMlp(vectorizer.n_features, len(DOCUMENT_CLASSES), hidden=32)
    classifier = DocumentClassifier(vectorizer, network, list(DOCUMENT_CLASSES), {})
    texts = [*corpus(4, 1), "", "T0TAL DUE 12.00 lnvoice lnvoice lnvoice"]
    for text, batch in zip(texts, classifier.score_texts(texts), strict=True):
        single = classifier.score_text(text)
        assert single.predicted_class == batch.predicted_class
        assert single.scores == pytest.approx(batch.scores, rel=1e-4, abs=1e-6)
