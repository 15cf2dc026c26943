"""Signing secrets sealed at rest with Fernet (AES-128-CBC + HMAC-SHA256) under WEBHOOK_SECRETS_KEY.

The service must sign with the secret itself, so it cannot keep only a hash (as it does for API keys);
a database dump without the key holds no usable secret.
"""

from cryptography.fernet import Fernet, InvalidToken

from triage_pipeline.domain.exceptions import WebhooksNotConfigured

_NOT_CONFIGURED = (
    "WEBHOOK_SECRETS_KEY is not set in this process: webhook signing secrets can be neither stored nor read "
    "(`triage run` creates one; elsewhere generate one with "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
)


class FernetSecretBox:
    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    def _box(self) -> Fernet:
        if self._fernet is None:
            raise WebhooksNotConfigured(_NOT_CONFIGURED)
        return self._fernet

    def seal(self, secret: str) -> str:
        return self._box().encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._box().decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise WebhooksNotConfigured(
                "a webhook secret cannot be opened with WEBHOOK_SECRETS_KEY: the key differs from the one that "
                "sealed it (rotate the endpoint's secret, or set the original key)"
            ) from None


def valid_secrets_key(key: str) -> bool:
    """True when `key` is a Fernet key (32 url-safe base64-encoded bytes)."""
    try:
        Fernet(key.encode())
    except ValueError:
        return False
    return True
