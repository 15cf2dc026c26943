"""Domain exceptions: every broken rule raises one of these."""


class DomainError(Exception):
    """Base class of every domain rule violation."""

    code = "domain_error"


class InvalidTransition(DomainError):
    """An entity was asked to move to a state its rules do not allow from where it is."""

    code = "invalid_transition"

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity} cannot go from {current} to {target}")
        self.entity = entity
        self.current = current
        self.target = target


class AttemptsExhausted(DomainError):
    """A triage job has used every attempt it is allowed."""

    code = "attempts_exhausted"

    def __init__(self, job_id: object, attempts: int) -> None:
        super().__init__(f"triage job {job_id} has used all {attempts} attempts")
        self.job_id = job_id
        self.attempts = attempts


class NotFound(DomainError):
    """A referenced entity does not exist (or is not visible to the caller)."""

    code = "not_found"

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"{entity} {entity_id} not found")
        self.entity = entity
        self.entity_id = entity_id


class DuplicateTicket(DomainError):
    """A ticket with the same (owner, external_id) already exists."""

    code = "duplicate_ticket"

    def __init__(self, owner_id: object, external_id: str, existing_id: object) -> None:
        super().__init__(f"ticket {external_id!r} of owner {owner_id} already exists as {existing_id}")
        self.owner_id = owner_id
        self.external_id = external_id
        self.existing_id = existing_id


class BatchNotFinished(DomainError):
    """A batch was asked to finish while some of its items are still open."""

    code = "batch_not_finished"

    def __init__(self, batch_id: object, open_items: int) -> None:
        super().__init__(f"batch {batch_id} still has {open_items} open item(s)")
        self.batch_id = batch_id
        self.open_items = open_items


class NoActivePrompt(DomainError):
    """No prompt version is active under the requested name."""

    code = "no_active_prompt"

    def __init__(self, name: str) -> None:
        super().__init__(f"no active prompt named {name!r}")
        self.name = name


class InvalidCursor(DomainError):
    """A pagination cursor is malformed or was not issued by this service."""

    code = "invalid_cursor"

    def __init__(self, cursor: str) -> None:
        super().__init__(f"invalid pagination cursor {cursor[:80]!r}")
        self.cursor = cursor


class RetriageNotAllowed(DomainError):
    """A ticket cannot be queued again now (still being triaged, or its job still has attempts left)."""

    code = "retriage_not_allowed"


class UnknownLabel(DomainError):
    """A label is not in the vocabulary of the prompt version it is checked against."""

    code = "unknown_label"

    def __init__(self, field: str, value: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{field} {value!r} is not one of {', '.join(allowed)}")
        self.field = field
        self.value = value
        self.allowed = allowed


class NotCorrectable(DomainError):
    """Only a ticket with a model answer can be corrected."""

    code = "not_correctable"


class InvalidPrompt(DomainError):
    """A new prompt version is not usable (e.g. its user template has no `{ticket}` placeholder)."""

    code = "invalid_prompt"


class Unauthenticated(DomainError):
    """No credentials, or credentials that match no active key; never says which."""

    code = "unauthorized"

    def __init__(self) -> None:
        super().__init__("missing, malformed, unknown or revoked API key")


class Forbidden(DomainError):
    """The caller is authenticated but its role does not allow the operation."""

    code = "forbidden"

    def __init__(self, action: str) -> None:
        super().__init__(f"this API key may not {action}")
        self.action = action


class PromotionRefused(DomainError):
    """A prompt version evaluated worse than the active one on the same labelled file (the promotion gate)."""

    code = "promotion_refused"

    def __init__(self, version: int, active_version: int, comparisons: list[dict[str, object]]) -> None:
        worse = "; ".join(
            f"{c['figure']} {c['candidate']:.3f} < {c['active']:.3f} on {c['dataset']}"
            for c in comparisons
            if c["worse"]
        )
        super().__init__(
            f"version {version} evaluated worse than the active version {active_version}: {worse}"
            " (activate with --force / force=true to override; the override is recorded)"
        )
        self.comparisons = comparisons


class UnsafeWebhookTarget(DomainError):
    """A webhook URL is not http(s), or resolves to an address the service must not call (SSRF)."""

    code = "unsafe_webhook_target"
    field = "url"


class WebhooksNotConfigured(DomainError):
    """Signing secrets cannot be stored or read: WEBHOOK_SECRETS_KEY is not set in this process."""

    code = "webhooks_not_configured"


class InvalidWebhook(DomainError):
    """A subscription's own values break a rule (no event type, an event type one cannot subscribe to)."""

    code = "invalid_webhook"

    def __init__(self, message: str, *, field: str = "event_types") -> None:
        super().__init__(message)
        self.field = field


class DeliveryInFlight(DomainError):
    """A redelivery was asked for while a deliverer is sending that very event to that endpoint."""

    code = "delivery_in_flight"

    def __init__(self, event_id: object, endpoint_id: object) -> None:
        super().__init__(
            f"event {event_id} is being sent to endpoint {endpoint_id} right now; see its delivery log, "
            "and ask again once that attempt is recorded"
        )
