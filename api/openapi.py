"""The OpenAPI description of the service, and a FastAPI that documents errors as problem+json."""

from typing import Any

from fastapi import FastAPI

from api.middleware import MAX_BODY_BYTES, REQUEST_ID_HEADER
from api.schemas.problem import PROBLEM_MEDIA_TYPE
from api.schemas.ticket_batch import MAX_BATCH_ITEMS

DESCRIPTION = f"""
Support tools post tickets here; a pipeline triages them with an LLM.

**Authentication.** Send `Authorization: Bearer <key>` (401 `unauthorized` without a valid key). An admin key
may do everything; an owner key may create and read only its owner's tickets, and manage only its owner's labelled
examples while reading the shared ones too (403 `forbidden` on admin routes; another owner's ticket or example is a
404). `POST /owners` and `POST /api-keys` show a new key once. The health probes need no key.

**Limits.** A request body holds at most {MAX_BODY_BYTES} bytes (2 MiB), checked on `Content-Length` and on the
streamed body (413 `payload_too_large`). `POST /tickets/batch` and `POST /examples` take at most
{MAX_BATCH_ITEMS:,} items (413 `too_many_items`). Field limits are in the schemas below.

**Idempotency.** `(owner_id, external_id)` is unique: re-posting a ticket answers 409 `duplicate_ticket` with the
`existing_id` (or DUPLICATE in a batch), so a create is safe to retry.

**Webhooks.** `POST /webhooks` subscribes a URL to events (`ticket.triaged`, `ticket.needs_review`,
`ticket.triage_failed`, `ticket.corrected`, `batch.done`) and shows its signing secret once (an owner key subscribes
to its own owner's events, an admin to one owner's or every owner's). Events are written with the change they tell
of and delivered at least once, as `POST` requests with a `{{type, timestamp, data}}` JSON body signed per Standard
Webhooks (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`): verify the signature and drop a repeated
`webhook-id`. Failed deliveries are retried for about 28 hours; each attempt is in `GET /webhooks/{{id}}/deliveries`.
The bodies are in this document's `webhooks` section.

**Errors** are `{PROBLEM_MEDIA_TYPE}` (RFC 9457: `type`, `title`, `status`, `detail`, `instance`) with a stable
`code` and the `request_id`; validation errors (422 `validation_error`) list each bad field in `errors`.
Every response carries an `{REQUEST_ID_HEADER}` header (a sane incoming one is kept).
""".strip()


class ProblemDocumentingFastAPI(FastAPI):
    """FastAPI whose OpenAPI schema gives every 4xx/5xx response the problem+json media type."""

    def openapi(self) -> dict[str, Any]:
        """The schema, built once."""
        if self.openapi_schema is not None:
            return self.openapi_schema
        schema = super().openapi()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(code)[0] in "45" and "application/json" in content:
                        response["content"] = {PROBLEM_MEDIA_TYPE: content["application/json"]}
        return schema
