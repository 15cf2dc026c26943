"""The delivery settings the webhook use cases need, apart from the adapters."""

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    timeout: timedelta = timedelta(seconds=10)
    concurrency: int = 16
    disable_after_failures: int = 50
    disable_min_failing: timedelta = timedelta(hours=1)
    secret_grace: timedelta = timedelta(days=1)

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery stays with its deliverer: past it (the deliverer died) another takes it.

        Longer than any request can last (timeouts bound it), so a live delivery is never sent twice at once.
        """
        return 2 * self.timeout + timedelta(seconds=5)
