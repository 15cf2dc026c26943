"""API keys for tests: the admin key the e2e containers are configured with, and bearer headers."""

ADMIN_API_KEY = "test-admin-key-7c2f9e41b8d3a5f0"
"""The ADMIN_API_KEY of every e2e container (auth is on in tests, as in production)."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN_HEADERS = bearer(ADMIN_API_KEY)
