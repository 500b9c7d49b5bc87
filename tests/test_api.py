"""The Litestar app through its test client, serving the model trained in ``trained_home``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from docflow_api.app import create_app
from docflow_assets.demo.render import RenderedDocument
from docflow_assets.settings import DocflowSettings
from tests.conftest import TrainedHome
from tests.test_ingest import encoded


@pytest.fixture(scope="module")
def client(trained_home: TrainedHome) -> Iterator[TestClient]:
    with TestClient(create_app(trained_home.settings)) as test_client:
        yield test_client


def test_health_reports_every_component_and_the_model(
    client: TestClient, trained_home: TrainedHome
) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == body["object_store"]["status"] == "up"
    assert body["model"]["version"] == trained_home.model_version
    assert body["model"]["loaded_since"]


def test_predict_text_classifies_unseen_documents(
    client: TestClient,
    trained_home: TrainedHome,
    holdout_corpus: tuple[Path, list[RenderedDocument]],
) -> None:
    _, rendered = holdout_corpus
    correct = 0
    for document in rendered:
        response = client.post(
            "/predict/text", json={"text": document.text, "return_all_scores": True}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["model_name"] == "docflow-classifier"
        assert body["model_version"] == trained_home.model_version
        assert set(body["all_scores"]) == set(TRAINED_CLASSES)
        assert body["confidence"] == max(body["all_scores"].values())
        assert body["is_confident"] == (body["confidence"] >= 0.5)
        correct += body["predicted_class"] == document.label
    assert correct / len(rendered) >= 0.85


def test_predict_text_leaves_scores_out_unless_asked(client: TestClient) -> None:
    body = client.post("/predict/text", json={"text": "INVOICE Total Due 12.00"}).json()
    assert body["all_scores"] is None
    assert body["predicted_class"] in TRAINED_CLASSES


@pytest.mark.parametrize(
    "payload",
    [{"text": ""}, {}, {"text": 5}, {"text": "x", "return_all_scores": "maybe"}],
    ids=["empty-text", "missing-text", "not-a-string", "bad-flag"],
)
def test_predict_text_rejects_bad_bodies_with_400(client: TestClient, payload: dict) -> None:
    response = client.post("/predict/text", json=payload)
    assert response.status_code == 400
    assert "text" in response.text or "return_all_scores" in response.text


def test_upload_then_read_back(client: TestClient) -> None:
    data = encoded("PNG")
    response = client.post(
        "/upload", files={"file": ("note.png", data, "image/png")}, data={"label": "memo"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["size"] == len(data) and body["pages"] == 1 and body["label"] == "memo"
    again = client.post("/upload", files={"file": ("copy.png", data, "image/png")})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == body["id"]
    stored = client.get(f"/document/{body['id']}")
    assert stored.status_code == 200 and stored.json()["sha256"] == body["sha256"]


def test_upload_of_a_non_document_is_415(client: TestClient) -> None:
    response = client.post("/upload", files={"file": ("x.png", b"just text", "image/png")})
    assert response.status_code == 415
    assert "unsupported_type" in response.json()["detail"]


def test_unknown_document_is_404(client: TestClient) -> None:
    response = client.get("/document/999999")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_without_a_deployed_model_predictions_are_503(tmp_path: Path) -> None:
    with TestClient(create_app(DocflowSettings(home=tmp_path))) as empty:
        assert empty.get("/health").status_code == 503
        assert empty.get("/health").json()["model"]["status"] == "down"
        response = empty.post("/predict/text", json={"text": "hello"})
        assert response.status_code == 503
        assert "no model" in response.json()["detail"]


TRAINED_CLASSES = (
    "invoice",
    "receipt",
    "letter",
    "memo",
    "resume",
    "contract",
    "purchase_order",
    "bank_statement",
)
