"""The system clock."""

from datetime import UTC, datetime


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        return datetime.now(UTC)
