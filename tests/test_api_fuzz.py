"""Schemathesis drives every operation of the OpenAPI schema: no input may cause a 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from docflow_api.app import create_app
from docflow_assets.settings import DocflowSettings

EXAMPLES_PER_OPERATION = 25


def test_no_generated_input_causes_a_server_error(home_copy: DocflowSettings) -> None:
    # A copy: the fuzzer relabels and uploads documents at random.
    app = create_app(home_copy)
    # Load the model now: the fuzzer's ASGI transport does not run the startup hook.
    app.state.model_holder.refresh()
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    cases: dict[str, int] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call()
            cases[case.operation.label] = cases.get(case.operation.label, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.operation.label} -> {response.status_code}: {response.text[:300]}"
                )

        call()
    print(f"\nschemathesis: {sum(cases.values())} cases over {len(cases)} operations")
    assert len(cases) >= 14, sorted(cases)
    assert failures == []
