"""Structured JSON logging: one JSON object per line with context fields."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("ticket_id", "job_id", "batch_id", "request_id", "run_id")
_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with timestamp, level, logger, message and context fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(_context.get())
        for key in CONTEXT_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                payload[key] = str(value)
        extra = record.__dict__.get("fields")
        if isinstance(extra, dict):
            payload.update({k: v for k, v in extra.items() if v is not None})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON at the given level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def bind_context(**fields: object) -> None:
    """Add context fields (ticket_id, job_id, batch_id, ...) to every later record of this context."""
    current = dict(_context.get())
    current.update({k: str(v) for k, v in fields.items() if v is not None})
    _context.set(current)


def clear_context() -> None:
    _context.set({})
