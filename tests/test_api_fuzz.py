"""Schemathesis drives every operation of the OpenAPI schema: no input may cause a 500, and
every answer must match the schema's response for its status (body and content type)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.core.result import Ok

from docflow_api.app import create_app
from docflow_assets.settings import DocflowSettings

EXAMPLES_PER_OPERATION = 25
RESPONSE_CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_generated_input_causes_a_server_error_or_an_undocumented_answer(
    home_copy: DocflowSettings,
) -> None:
    # A copy: the fuzzer relabels and uploads documents at random.
    app = create_app(home_copy)
    # Load the model now: the fuzzer's ASGI transport does not run the startup hook.
    app.state.context.model_holder.refresh()
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    cases: dict[str, int] = {}
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "every operation in the schema loads"
    assert len(operations) >= 13
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case) -> None:
            response = case.call()
            cases[case.operation.label] = cases.get(case.operation.label, 0) + 1
            case.validate_response(response, checks=RESPONSE_CHECKS)

        call()
    print(f"\nschemathesis: {sum(cases.values())} cases over {len(cases)} operations")
    assert len(cases) == len(operations), sorted(cases)  # every operation was exercised
