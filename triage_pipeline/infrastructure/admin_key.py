"""The local admin API key of `triage run`: generated once, kept in a git-ignored file, never logged."""

import os
import secrets
from pathlib import Path

from triage_pipeline.infrastructure.settings import PROJECT_ROOT, Settings

ADMIN_KEY_FILE = PROJECT_ROOT / ".triage_admin_key"


def local_admin_key(settings: Settings, path: Path = ADMIN_KEY_FILE) -> str | None:
    """ADMIN_API_KEY if set, else the key `triage run` stored locally, else None."""
    if settings.admin_api_key is not None:
        return settings.admin_api_key.get_secret_value()
    return path.read_text().strip() if path.is_file() else None


def ensure_local_admin_key(settings: Settings, path: Path = ADMIN_KEY_FILE) -> str:
    """The admin key for a local run, creating the key file (mode 600) on first use."""
    existing = local_admin_key(settings, path)
    if existing:
        return existing
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(key + "\n")
    return key
