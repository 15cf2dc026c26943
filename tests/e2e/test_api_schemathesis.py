"""Property-based run of the OpenAPI schema: no 5xx, and every response matches its documented schema.

Auth is on, as in production: every generated request carries the admin key.
"""

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from tests.support.auth import ADMIN_API_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]

# A batch above its documented maxItems is refused with 413 (too_many_items), which is a rejection too; so is
# the 401 of a generated request that leaves the (required) API key out.
# The admin key is given as the schema's `ApiKey` security scheme, so schemathesis itself sends it, and knows
# when a negative case leaves it out on purpose.
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"ApiKey": {"bearer": ADMIN_API_KEY}}},
        "checks": {"negative_data_rejection": {"expected-statuses": ["400", "401", "404", "405", "409", "413", "422"]}},
    }
)

# The schema needs no database; each generated request goes to the app over the clean test database.
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG)


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_honours_its_openapi_schema(case: schemathesis.Case[Any], client: TestClient) -> None:
    case.call_and_validate(app=client.app, checks=CHECKS)
