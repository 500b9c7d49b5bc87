"""The Litestar app through its test client, serving the model trained in ``trained_home``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from litestar.testing import TestClient

from docflow_api.app import create_app
from docflow_assets.demo.render import RenderedDocument
from docflow_assets.document_service import DocumentService
from docflow_assets.settings import DocflowSettings
from tests.conftest import TrainedHome
from tests.helpers import encoded, page_png


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


def test_the_front_page_shows_the_model_and_the_pipeline(
    client: TestClient, trained_home: TrainedHome
) -> None:
    from html import unescape

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    shown = unescape(page.text)
    trained = trained_home.materialisations["document_classifier"]
    assert f"Serving version {trained_home.model_version}" in shown
    assert f"on snapshot {trained['training_snapshot']}" in shown
    assert f"cross-validated macro-F1 {trained['test_macro_f1']:.3f}" in shown
    assert str(trained["head"]) in shown
    # Documents by status, linked to the review list; the holdout's predictions are recent.
    assert 'href="/review?status=predicted"' in shown
    assert 'id="backlog"' in shown and 'id="upload"' in shown
    recent = shown[shown.index('id="recent"') :]
    assert any(f'href="/review/{i}"' in recent for i in trained_home.holdout)
    for link in ("/review", "/schema/swagger", "/health"):
        assert f'href="{link}"' in shown
    assert "font:" in shown  # the review page's look, not the browser's default serif


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
        assert "none has been trained" in response.json()["detail"]


def test_while_the_gate_refuses_every_version_the_api_and_cli_say_why(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from docflow_assets.cli import main
    from docflow_assets.ml.registry import Registry
    from docflow_assets.ml.training import TrainingConfig, train_classifier

    settings = DocflowSettings(home=tmp_path)
    texts = [f"invoice number {n} total amount due" for n in range(4)]
    texts += [f"dear madam, thank you for your letter {n}" for n in range(4)]
    labels = ["invoice"] * 4 + ["letter"] * 4
    result = train_classifier(texts, labels, TrainingConfig(folds=2, max_epochs=2))
    registry = Registry.from_settings(settings)
    version = registry.log_training(result, "hash", {}).version
    reason = "beats_baseline: cross-validated macro-F1 0.400 vs baseline 0.440"
    registry.record_verdict(version, False, reason)
    why = f"version {version} was refused by the deployment gate ({reason})"
    with TestClient(create_app(settings)) as refused:
        assert why in refused.get("/model").json()["detail"]
        assert why in refused.get("/health").json()["model"]["detail"]
        assert refused.post("/predict/text", json={"text": "x"}).status_code == 503
    info = CliRunner().invoke(main, ["model", "info"], env={"DOCFLOW_HOME": str(tmp_path)})
    assert info.exit_code == 1
    assert f"last gate verdict: version {version} refused" in info.output


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


def test_predict_batch_scores_every_text_in_order(client: TestClient) -> None:
    texts = ["SALES RECEIPT TOTAL CASH CHANGE", "PURCHASE ORDER PO Number Vendor Ship To"]
    response = client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 200
    classes = [item["predicted_class"] for item in response.json()["predictions"]]
    assert classes == ["receipt", "purchase_order"]
    assert client.post("/predict/batch", json={"texts": []}).status_code == 400


def test_predict_stored_document_uses_its_ocr_text_and_records_history(
    client: TestClient, trained_home: TrainedHome
) -> None:
    document_id, truth = next(iter(trained_home.holdout.items()))
    before = client.get(f"/prediction/history/{document_id}").json()["predictions"]
    response = client.post(f"/predict/document/{document_id}", json={"return_all_scores": True})
    assert response.status_code == 200
    body = response.json()
    assert body["document_id"] == document_id and body["predicted_class"] == truth
    history = client.get(f"/prediction/history/{document_id}").json()["predictions"]
    assert len(history) == len(before) + 1
    assert history[-1]["source"] == "api" and history[-1]["predicted_class"] == truth
    assert {item["source"] for item in history} == {"batch", "api"}
    assert client.post("/predict/document/999999").status_code == 404
    assert client.get("/prediction/history/999999").status_code == 404


def test_a_document_stuck_in_ocr_holds_up_neither_health_nor_text_predictions(
    client: TestClient, trained_home: TrainedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()
    real_predict = DocumentService.predict

    def stuck_predict(*args: object, **kwargs: object) -> object:
        entered.set()
        release.wait(20)
        finished.set()
        return real_predict(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DocumentService, "predict", stuck_predict)
    document_id = next(iter(trained_home.holdout))
    with ThreadPoolExecutor(1) as background:
        stuck = background.submit(client.post, f"/predict/document/{document_id}")
        try:
            assert entered.wait(10)
            health = client.get("/health")
            prediction = client.post("/predict/text", json={"text": "INVOICE Total Due 12.00"})
            # Had the stuck document blocked the event loop or the scoring threads, these
            # answers could only have come after it finished.
            assert not finished.is_set()
        finally:
            release.set()
        assert health.status_code == 200 and prediction.status_code == 200
        assert prediction.json()["predicted_class"] == "invoice"
        assert stuck.result(timeout=60).status_code == 200


def test_upload_and_predict_runs_ocr_on_the_new_document(
    client: TestClient, holdout_corpus: tuple[Path, list[RenderedDocument]]
) -> None:
    from docflow_assets.demo.render import render_document

    data, extension, _ = render_document("invoice", 99, seed=42)
    response = client.post(
        "/upload-and-predict",
        files={"file": (f"new.{extension}", data, "application/octet-stream")},
        data={"return_all_scores": "true"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"]["predicted_class"] == "invoice"
    assert body["document"]["status"] == "predicted"
    detail = client.get(f"/document/{body['document']['id']}").json()
    assert detail["ocr_pages"] and "INVOICE" in detail["text"].upper()
    original = client.get(f"/document/{body['document']['id']}/file")
    assert original.status_code == 200 and original.content == data


def test_label_feeds_retraining_and_is_validated(client: TestClient) -> None:
    created = client.post("/upload", files={"file": ("l.bmp", encoded("BMP"), "image/bmp")}).json()
    response = client.put(f"/document/{created['id']}/label", json={"label": "Bank Statement"})
    assert response.status_code == 200 and response.json()["label"] == "bank_statement"
    detail = client.get(f"/document/{created['id']}").json()
    assert detail["label_source"] == "api"
    bad = client.put(f"/document/{created['id']}/label", json={"label": "no/slashes"})
    assert bad.status_code == 400 and "label" in bad.json()["detail"]
    assert client.put("/document/999999/label", json={"label": "memo"}).status_code == 404
    listed = client.get("/documents", params={"label": "bank_statement", "page_size": 500}).json()
    assert created["id"] in [item["id"] for item in listed["items"]]


def test_documents_are_paged_and_filtered(client: TestClient, trained_home: TrainedHome) -> None:
    first = client.get("/documents", params={"page": 1, "page_size": 5}).json()
    second = client.get("/documents", params={"page": 2, "page_size": 5}).json()
    assert len(first["items"]) == len(second["items"]) == 5
    assert first["total"] >= len(trained_home.training_ids) + len(trained_home.holdout)
    assert not {d["id"] for d in first["items"]} & {d["id"] for d in second["items"]}
    invoices = client.get("/documents", params={"label": "invoice", "page_size": 500}).json()
    assert invoices["total"] >= 6 and all(d["label"] == "invoice" for d in invoices["items"])
    assert client.get("/documents", params={"page": 0}).status_code == 400


def test_listed_documents_carry_their_latest_prediction(
    client: TestClient, trained_home: TrainedHome
) -> None:
    holdout = sorted(trained_home.holdout)
    listed = client.get("/documents", params={"page_size": 500}).json()["items"]
    by_id = {item["id"]: item for item in listed}
    for document_id in holdout:
        history = client.get(f"/prediction/history/{document_id}").json()["predictions"]
        latest = by_id[document_id]["latest_prediction"]
        # The newest of the history, not the first: the holdout is scored by batch, then maybe
        # again online by other tests.
        assert latest["predicted_class"] == history[-1]["predicted_class"]
        assert latest["source"] == history[-1]["source"]
        assert latest["model_version"] == trained_home.model_version
    fresh = client.post("/upload", files={"file": ("unread.png", page_png("never predicted"))})
    unread = client.get("/documents", params={"status": "uploaded", "page_size": 500}).json()
    [item] = [i for i in unread["items"] if i["id"] == fresh.json()["id"]]
    assert item["latest_prediction"] is None


def test_model_endpoint_reports_version_and_metrics(
    client: TestClient, trained_home: TrainedHome
) -> None:
    body = client.get("/model").json()
    assert body["version"] == trained_home.model_version
    assert body["alias"] == "champion"
    assert body["metrics"]["macro_f1"] >= 0.6
    assert sorted(body["classes"]) == sorted(TRAINED_CLASSES)


def test_metrics_expose_predictions_uploads_and_latency(client: TestClient) -> None:
    client.post("/predict/text", json={"text": "MEMORANDUM TO: All Staff FROM: DATE: SUBJECT:"})
    text = client.get("/metrics").text
    assert 'docflow_predictions_total{predicted_class="memo"}' in text
    assert "docflow_uploads_total" in text
    assert "docflow_model_info{" in text
    assert 'path="/predict/text"' in text


def test_upload_over_the_limit_is_413_and_stores_nothing(tmp_path: Path) -> None:
    settings = DocflowSettings(home=tmp_path, max_upload_bytes=100_000)
    big = encoded("PNG") + b"\0" * 300_000
    with TestClient(create_app(settings)) as small:
        response = small.post("/upload", files={"file": ("big.png", big, "image/png")})
        assert response.status_code == 413
        assert "100000 bytes" in response.json()["detail"]
        assert small.get("/documents").json()["total"] == 0


def test_api_keys_guard_every_route_but_health_metrics_and_the_docs(
    trained_home: TrainedHome,
) -> None:
    settings = trained_home.settings.model_copy(update={"api_keys": "k1, k2"})
    with TestClient(create_app(settings)) as guarded:
        assert guarded.get("/health").status_code == 200
        assert guarded.get("/metrics").status_code == 200
        # A browser opens the docs without a key; the document says how to send one.
        schema = guarded.get("/schema/openapi.json")
        assert schema.status_code == 200
        spec = schema.json()
        assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
        assert spec["security"] == [{"apiKey": []}]
        assert {"predictions", "documents"} <= {t for op in _operations(spec) for t in op["tags"]}
        front = guarded.get("/")
        assert front.status_code == 200 and 'href="/schema/swagger"' in front.text
        assert "Dagster UI" in front.text and "docflow mlflow-ui" in front.text
        # Without a key the front page says where things are, and shows no data.
        assert 'id="locked"' in front.text and 'id="recent"' not in front.text
        signed_in = guarded.get("/", headers={"X-API-Key": "k1"})
        assert 'id="recent"' in signed_in.text and 'id="locked"' not in signed_in.text
        refused = guarded.post("/predict/text", json={"text": "hello"})
        assert refused.status_code == 401 and "X-API-Key" in refused.json()["detail"]
        wrong = guarded.get("/documents", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        allowed = guarded.post("/predict/text", json={"text": "hello"}, headers={"X-API-Key": "k2"})
        assert allowed.status_code == 200


def _operations(spec: dict) -> list[dict]:
    return [operation for path in spec["paths"].values() for operation in path.values()]


def test_hostile_filenames_are_stored_clean_and_downloaded_with_a_standard_header(
    client: TestClient,
) -> None:
    injected = "r.png\"; filename*=UTF-8''evil.html; x=\""
    for name, marker in (("счёт\n№ 7.png", "page A"), (injected, "page B")):
        from tests.helpers import page

        buffer = __import__("io").BytesIO()
        page(marker).save(buffer, format="PNG")
        created = client.post("/upload", files={"file": (name, buffer.getvalue(), "image/png")})
        assert created.status_code == 201, created.text
        stored = created.json()["filename"]
        assert "\n" not in stored and "\x00" not in stored
        download = client.get(f"/document/{created.json()['id']}/file")
        assert download.status_code == 200
        header = download.headers["content-disposition"]
        assert header.count("filename*=") == 1 and header.count('"') == 2
        assert header.endswith("filename*=UTF-8''" + quote(stored, safe=""))
    assert unquote(header.split("''", 1)[1]) == injected  # the exact name, encoded


def test_undecodable_bodies_bad_keys_and_unknown_filters_are_400s_not_500s(
    client: TestClient, trained_home: TrainedHome
) -> None:
    not_utf8 = client.post(
        "/predict/text", content=b'{"text":"\xff"}', headers={"content-type": "application/json"}
    )
    assert not_utf8.status_code == 400 and "UTF-8" in not_utf8.json()["detail"]
    deep = client.post(
        "/predict/text",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert 400 <= deep.status_code < 500
    bogus = client.get("/documents", params={"status": "bogus"})
    assert bogus.status_code == 400 and "ocr_done" in bogus.json()["detail"]
    locked = trained_home.settings.model_copy(update={"api_keys": "s3cret"})
    with TestClient(create_app(locked)) as guarded:
        odd = guarded.get("/documents", headers={b"X-API-Key": b"\xff"})
        assert odd.status_code == 401
        assert guarded.get("/documents", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_upload_and_predict_takes_an_empty_language_as_the_default_and_refuses_a_lying_pdf(
    client: TestClient,
) -> None:
    from tests.helpers import page, pdf_promising_three_pages

    buffer = __import__("io").BytesIO()
    page("INVOICE 7781 total due 40.00").save(buffer, format="PNG")
    files = {"file": ("empty-language.png", buffer.getvalue(), "image/png")}
    answered = client.post("/upload-and-predict", files=files, data={"ocr_language": ""})
    assert answered.status_code == 200, answered.text
    before = client.get("/documents", params={"page_size": 1}).json()["total"]
    lying = {"file": ("three.pdf", pdf_promising_three_pages(), "application/pdf")}
    refused = client.post("/upload-and-predict", files=lying)
    assert refused.status_code == 422 and "page 2 of 3 cannot be read" in refused.json()["detail"]
    assert client.get("/documents", params={"page_size": 1}).json()["total"] == before


def test_online_ocr_is_bounded_by_slots_and_pages(trained_home: TrainedHome) -> None:
    from tests.helpers import encoded

    bounded = trained_home.settings.model_copy(update={"online_max_pages": 2})
    with TestClient(create_app(bounded)) as api:
        three = {"file": ("three-pages.tif", encoded("TIFF", pages=3), "image/tiff")}
        left = api.post("/upload-and-predict", files=three)
        assert left.status_code == 202, left.text
        assert "online OCR reads at most 2" in left.json()["detail"]
        document = api.get(f"/document/{left.json()['document_id']}").json()
        assert document["status"] == "uploaded"  # stored whole, for the pipeline to read
        slots = api.app.state.context.online_ocr_slots
        taken = [slots.acquire(blocking=False) for _ in range(bounded.api_online_ocr_slots)]
        assert all(taken)
        try:
            one = {"file": ("one-page.png", encoded("PNG"), "image/png")}
            busy = api.post("/upload-and-predict", files=one)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
            detail = busy.json()["detail"]
            assert "online OCR slot is busy: document" in detail
        finally:
            for _ in taken:
                slots.release()
        stored = int(detail.split("document ", 1)[1].split(" ", 1)[0])
        assert api.post(f"/predict/document/{stored}").status_code == 200


def test_online_ocr_waits_for_the_lease_another_server_holds(trained_home: TrainedHome) -> None:
    from datetime import UTC, datetime, timedelta

    from docflow_assets.document_service import LeftToPipeline
    from docflow_assets.page_text import PageText
    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document
    from docflow_assets.store.repository import (
        claim_online_ocr,
        release_online_ocr,
        replace_ocr_results,
    )

    settings = trained_home.settings.model_copy(update={"online_ocr_seconds": 5})
    service = DocumentService.from_settings(settings)
    database = settings.resolved_database_url
    with TestClient(create_app(settings)) as api:
        stored = [
            api.post("/upload", files={"file": (f"lease-{n}.png", page_png(f"lease {n}"))})
            for n in range(3)
        ]
    waited_for, expired, never_released = (answer.json()["id"] for answer in stored)
    now = datetime.now(UTC)
    with session_scope(database) as session:
        # Another API process is reading the first and third; its lease on the second has run out.
        assert claim_online_ocr(session, waited_for, now, now + timedelta(minutes=1))
        assert claim_online_ocr(session, never_released, now, now + timedelta(minutes=1))
        assert claim_online_ocr(session, expired, now - timedelta(minutes=2), now)
        assert not claim_online_ocr(session, waited_for, now, now + timedelta(minutes=1))

    with ThreadPoolExecutor(1) as background:
        waiting = background.submit(service.text, waited_for)
        threading.Event().wait(1)
        assert not waiting.done()  # it waits for the other reader instead of reading too
        with session_scope(database) as session:
            document = session.get(Document, waited_for)
            assert document is not None
            other_reading = PageText(settings.ocr_mode, "eng", [], 0.1, text="read elsewhere")
            replace_ocr_results(session, document, [other_reading])
            release_online_ocr(session, waited_for)
        assert waiting.result(timeout=10) == ("read elsewhere", False)

    _, ran_ocr = service.text(expired)  # a dead server's lease does not hold anyone up
    assert ran_ocr
    with pytest.raises(LeftToPipeline, match="another request is reading it and the time"):
        service.text(never_released)


def test_predictions_are_listed_filtered_and_exported_as_csv_and_parquet(
    client: TestClient, trained_home: TrainedHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    import pandas as pd
    from click.testing import CliRunner

    from docflow_assets.cli import main

    batch = client.get("/predictions", params={"source": "batch", "page_size": 500}).json()
    assert batch["total"] >= len(trained_home.holdout)
    assert {item["source"] for item in batch["items"]} == {"batch"}
    ids = [item["id"] for item in batch["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    unsure = client.get("/predictions", params={"max_confidence": 0.5}).json()["items"]
    assert all(item["confidence"] <= 0.5 for item in unsure)
    assert client.get("/predictions", params={"max_confidence": 2}).status_code == 400
    assert client.get("/predictions", params={"source": "elsewhere"}).status_code == 400

    as_csv = client.get("/predictions/export", params={"source": "batch"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(as_csv.text))
    assert len(table) == batch["total"] and set(table["source"]) == {"batch"}
    holdout_rows = table[table["document_id"].isin(list(trained_home.holdout))]
    assert set(holdout_rows["document_id"]) == set(trained_home.holdout)
    as_parquet = client.get("/predictions/export", params={"format": "parquet", "source": "batch"})
    typed = pd.read_parquet(io.BytesIO(as_parquet.content))
    assert list(typed.columns) == list(table.columns)
    assert typed["prediction_id"].tolist() == table["prediction_id"].tolist()
    assert typed["confidence"].tolist() == pytest.approx(table["confidence"].tolist())
    # Written a few rows at a time, the files hold the same: one header, every row, in order.
    monkeypatch.setattr("docflow_assets.document_service.records.EXPORT_BATCH_ROWS", 3)
    assert client.get("/predictions/export", params={"source": "batch"}).text == as_csv.text
    in_batches = client.get("/predictions/export", params={"format": "parquet", "source": "batch"})
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(in_batches.content)), typed)

    out = tmp_path / "predictions.parquet"
    env = {"DOCFLOW_HOME": str(trained_home.settings.resolved_home)}
    written = CliRunner().invoke(main, ["export", "--out", str(out), "--source", "batch"], env=env)
    assert written.exit_code == 0, written.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), typed)


def test_a_deleted_document_is_gone_from_every_route(client: TestClient) -> None:
    stored = client.post("/upload", files={"file": ("gone.png", page_png("to be deleted"))}).json()
    document_id = stored["id"]
    assert client.post(f"/predict/document/{document_id}").status_code == 200
    deleted = client.delete(f"/document/{document_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["predictions"] == 1 and deleted.json()["ocr_rows"] >= 1
    for path in (f"/document/{document_id}", f"/document/{document_id}/file"):
        assert client.get(path).status_code == 404
    assert client.get(f"/prediction/history/{document_id}").status_code == 404
    assert client.delete(f"/document/{document_id}").status_code == 404
    listed = client.get("/predictions", params={"page_size": 500}).json()["items"]
    assert document_id not in {item["document_id"] for item in listed}


def test_documents_are_found_by_the_words_of_their_text(
    client: TestClient, trained_home: TrainedHome
) -> None:
    found = client.get("/documents", params={"q": "invoice", "page_size": 500}).json()
    assert found["total"] >= 1 and len(found["items"]) == found["total"]
    for item in found["items"]:
        assert "[invoice]" in item["snippet"].lower()
        text = client.get(f"/document/{item['id']}").json()["text"]
        assert "invoice" in text.lower()
    holdout_invoices = {i for i, label in trained_home.holdout.items() if label == "invoice"}
    assert holdout_invoices <= {item["id"] for item in found["items"]}
    assert client.get("/documents", params={"q": "zyxwvutsrq"}).json()["total"] == 0
    page = client.get("/review", params={"q": "invoice"})
    assert page.status_code == 200 and "[invoice]" in page.text.lower()


@pytest.mark.parametrize("file_format", ["PDF", "TIFF"])
def test_a_long_document_is_reviewed_ten_pages_at_a_time(tmp_path: Path, file_format: str) -> None:
    data = encoded(file_format, pages=23)
    with TestClient(create_app(DocflowSettings(home=tmp_path / "home"))) as review:
        stored = review.post("/upload", files={"file": (f"long.{file_format}", data)}).json()
        document_id = stored["id"]
        first = review.get(f"/review/{document_id}").text
        assert first.count(f'src="/review/{document_id}/page/') == 10
        assert "Pages 1-10 of 23" in first and "from_page=11" in first
        last = review.get(f"/review/{document_id}?from_page=21").text
        assert last.count(f'src="/review/{document_id}/page/') == 3
        assert "Pages 21-23 of 23" in last and "from_page=11" in last
        image = review.get(f"/review/{document_id}/page/23")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert review.get(f"/review/{document_id}/page/24").status_code == 400
