"""schemathesis, in-process against the alert service's API: no 5xx, responses as documented."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from finlake_alerting.api import create_api
from tests.unit.finlake_alerting.conftest import MakeService


# positive_data_acceptance is left out: a schema-valid silence may rightly be refused (an
# invalid regular expression, an end before its start), as a 422.
def test_the_alert_api_never_fails_and_matches_its_schema(make_service: MakeService) -> None:
    app = create_api(make_service("[{type: dashboard}]"))
    # The probes answer 503 by design here (nothing is consumed): test_api.py checks them.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
        path=["/healthz", "/readyz"]
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Case) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
