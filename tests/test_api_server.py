"""The API as a real server on loopback: concurrent uploads and a hot model swap."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from docflow_assets.demo.render import RenderedDocument
from docflow_assets.ml.registry import Registry
from docflow_assets.ml.training import TrainingConfig, train_classifier
from docflow_assets.settings import DocflowSettings
from tests.conftest import TrainedHome
from tests.helpers import encoded, page_png, serve

pytestmark = pytest.mark.integration


def test_concurrent_uploads_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    settings = DocflowSettings(home=tmp_path)
    same = encoded("PNG")
    different = [page_png(f"document number {n}") for n in range(8)]
    with serve(settings) as base, httpx.Client(base_url=base, timeout=60) as client:

        def upload(data: bytes) -> httpx.Response:
            return client.post("/upload", files={"file": ("f.png", data, "image/png")})

        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(upload, [same] * 8 + different))
        same_responses, different_responses = responses[:8], responses[8:]
        assert sorted(r.status_code for r in same_responses) == [200] * 7 + [201]
        assert len({r.json()["id"] for r in same_responses}) == 1
        assert all(r.status_code == 201 for r in different_responses)
        assert len({r.json()["id"] for r in different_responses}) == 8
        listed = client.get("/documents", params={"page_size": 100}).json()
        assert listed["total"] == 9
        assert sorted(d["sha256"] for d in listed["items"]) == sorted(
            {r.json()["sha256"] for r in responses}
        )
    stored = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert len(stored) == 9


def test_hot_model_swap_serves_every_request(
    trained_home: TrainedHome,
    training_corpus: tuple[Path, list[RenderedDocument]],
    home_copy: DocflowSettings,
) -> None:
    settings = home_copy.model_copy(update={"model_poll_seconds": 0.2})
    registry = Registry.from_settings(settings)
    _, rendered = training_corpus
    result = train_classifier(
        [d.text for d in rendered],
        [d.label for d in rendered],
        TrainingConfig(seed=11, max_epochs=15),
    )
    new_version = registry.log_training(result, "swap-test", {}).version
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()
    with serve(settings) as base:

        def hammer() -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                while not stop.is_set():
                    response = client.post("/predict/text", json={"text": "INVOICE Total Due"})
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        versions.add(response.json()["model_version"])

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(1)
        registry.deploy(settings.model_alias, new_version)
        deadline = time.monotonic() + 60
        while new_version not in versions and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join()
    assert statuses and set(statuses) == {200}
    assert versions == {trained_home.model_version, new_version}
