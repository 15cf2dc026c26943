"""The local WEBHOOK_SECRETS_KEY of `triage run`: generated once, kept in a git-ignored file, never logged.

The key seals the endpoints' signing secrets in the database, so it must stay the same from one start to
the next: a lost or replaced key leaves every stored secret unreadable (each endpoint then needs a secret
rotation). That is why it lives in a file beside the project, as the local admin key does.
"""

import os
from pathlib import Path

from cryptography.fernet import Fernet

from triage_pipeline.infrastructure.settings import PROJECT_ROOT, Settings
from triage_pipeline.infrastructure.webhooks.secret_box import valid_secrets_key

WEBHOOK_KEY_FILE = PROJECT_ROOT / ".triage_webhook_key"


class WebhookKeyFileError(ValueError):
    """The key file exists but holds no Fernet key; the message says what to do."""


def local_webhook_key(settings: Settings, path: Path = WEBHOOK_KEY_FILE) -> str | None:
    """WEBHOOK_SECRETS_KEY if set, else the key `triage run` stored locally, else None.

    Raises `WebhookKeyFileError` when the file holds something that is not a Fernet key (an edited file):
    a new key would not open the secrets sealed with the old one, so none is made in its place.
    """
    if settings.webhook_secrets_key is not None:
        return settings.webhook_secrets_key.get_secret_value()
    if not path.is_file():
        return None
    key = path.read_text().strip()
    if not valid_secrets_key(key):
        raise WebhookKeyFileError(
            f"{path} does not hold a Fernet key: restore the original file, or delete it to have a new key made "
            "(the secrets of existing webhook endpoints then need a rotation)"
        )
    return key


def ensure_local_webhook_key(settings: Settings, path: Path = WEBHOOK_KEY_FILE) -> str:
    """The webhook secrets key for a local run, creating the key file (mode 600) on first use."""
    existing = local_webhook_key(settings, path)
    if existing:
        return existing
    key = Fernet.generate_key().decode()
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(key + "\n")
    return key
