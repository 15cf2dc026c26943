"""Webhook rules without I/O: the retry schedule, the verdict on an answer, what each event carries, which
changes write which events (in-memory unit of work), and the SSRF guard on literal addresses."""

from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from uuid import uuid4

import httpx
import pytest

from tests.unit.fakes import FakeClock, FakeLlm, FakeUowFactory
from triage_pipeline.application.batches import CreateBatch, CreateBatchCommand, FinishBatch, FinishBatchCommand
from triage_pipeline.application.intake import CreateTickets, CreateTicketsCommand, NewTicket
from triage_pipeline.application.triage import TriageJobCommand, TriageOneJob
from triage_pipeline.domain.exceptions import UnsafeWebhookTarget
from triage_pipeline.domain.llm_errors import LlmTimeout
from triage_pipeline.domain.owner import DEFAULT_OWNER_ID, Owner
from triage_pipeline.domain.prompt import Prompt
from triage_pipeline.domain.review import ReviewStatus
from triage_pipeline.domain.statuses import TicketStatus, TriageJobStatus
from triage_pipeline.domain.ticket import Ticket
from triage_pipeline.domain.triage_answer import Priority, Sentiment, TriageAnswer
from triage_pipeline.domain.triage_job import MAX_ATTEMPTS, TriageJob
from triage_pipeline.domain.webhook import (
    MAX_DELIVERY_ATTEMPTS,
    RETRY_SCHEDULE,
    EventType,
    ResponseVerdict,
    WebhookEvent,
    batch_done_events,
    retry_delay,
    triaged_events,
    verdict_of,
)
from triage_pipeline.infrastructure.webhooks.sender import pinned
from triage_pipeline.infrastructure.webhooks.target_policy import CheckedTarget, ResolvingTargetPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_retry_schedule_follows_standard_webhooks_and_ends_after_about_a_day() -> None:
    assert [retry_delay(n, 0.0) for n in range(1, MAX_DELIVERY_ATTEMPTS)] == list(RETRY_SCHEDULE)
    assert retry_delay(MAX_DELIVERY_ATTEMPTS, 0.0) is None
    total = sum(RETRY_SCHEDULE, timedelta())
    assert timedelta(hours=20) < total < timedelta(hours=30)


def test_jitter_stretches_a_wait_by_at_most_a_fifth_either_way() -> None:
    assert retry_delay(1, 1.0) == timedelta(seconds=6)
    assert retry_delay(1, -1.0) == timedelta(seconds=4)
    assert retry_delay(1, 5.0) == timedelta(seconds=6)  # a draw out of range is clamped
    with pytest.raises(ValueError):
        retry_delay(0, 0.0)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, ResponseVerdict.DELIVERED),
        (204, ResponseVerdict.DELIVERED),
        (299, ResponseVerdict.DELIVERED),
        (410, ResponseVerdict.GONE),
        (301, ResponseVerdict.RETRY),
        (400, ResponseVerdict.RETRY),
        (429, ResponseVerdict.RETRY),
        (500, ResponseVerdict.RETRY),
        (None, ResponseVerdict.RETRY),
    ],
)
def test_only_2xx_delivers_410_ends_the_endpoint_and_everything_else_is_retried(
    status: int | None, verdict: ResponseVerdict
) -> None:
    assert verdict_of(status) is verdict


def answered(review: ReviewStatus) -> Ticket:
    answer = TriageAnswer("bug", Priority.HIGH, Sentiment.NEGATIVE, "en", "broken", 0.4)
    return Ticket(uuid4(), uuid4(), "EXT-1", "t", "d", TicketStatus.COMPLETED, T0, T0, answer, review)


def test_a_doubtful_answer_tells_triaged_and_needs_review_a_confident_one_only_triaged() -> None:
    job = TriageJob(uuid4(), uuid4(), TriageJobStatus.DONE, 1, T0, T0)
    doubtful = triaged_events(
        answered(ReviewStatus.NEEDS_REVIEW), job, batch_id=None, prompt_version=2, model="m", now=T0
    )
    confident = triaged_events(
        answered(ReviewStatus.AUTO_APPLIED), job, batch_id=None, prompt_version=2, model="m", now=T0
    )
    assert [e.type for e in doubtful] == [EventType.TICKET_TRIAGED, EventType.TICKET_NEEDS_REVIEW]
    assert [e.type for e in confident] == [EventType.TICKET_TRIAGED]
    payload = doubtful[0].payload()
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["data"]["review_status"] == "NEEDS_REVIEW" and payload["data"]["confidence"] == 0.4
    assert doubtful[0].webhook_id != doubtful[1].webhook_id  # two events, two ids


def test_batch_done_counts_each_owners_own_tickets_and_the_whole_batch_for_all_owners() -> None:
    a, b = uuid4(), uuid4()
    events = batch_done_events(uuid4(), {a: {"DONE": 2}, b: {"DONE": 1, "FAILED": 1}}, abandoned=False, now=T0)
    by_owner = {e.owner_id: e.data for e in events}
    assert by_owner[None]["counts"] == {"DONE": 3, "FAILED": 1, "PENDING": 0} and by_owner[None]["total"] == 4
    assert by_owner[a]["total"] == 2 and by_owner[b]["counts"]["FAILED"] == 1


@pytest.fixture
def uow() -> FakeUowFactory:
    factory = FakeUowFactory()
    factory.store.owners[DEFAULT_OWNER_ID] = Owner(DEFAULT_OWNER_ID, "default", T0, T0)
    prompt = Prompt(uuid4(), "triage", 1, "sys", "<ticket>{ticket}</ticket>", {}, {}, True, T0, categories=("bug",))
    factory.store.prompts[prompt.id] = prompt
    return factory


def test_only_the_last_failed_attempt_tells_triage_failed(uow: FakeUowFactory) -> None:
    CreateTickets(uow, FakeClock()).execute(CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, "E-1", "T", "D")]))
    [job_id] = list(uow.store.jobs)
    use_case = TriageOneJob(uow, FakeLlm(error=LlmTimeout("read timed out")), FakeClock())
    failed: list[WebhookEvent] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        use_case.execute(TriageJobCommand(job_id))
        failed = [e for e in uow.store.events if e.type is EventType.TICKET_TRIAGE_FAILED]
        assert len(failed) == (1 if attempt == MAX_ATTEMPTS else 0)
    assert failed[0].data["error_class"] == "timeout" and failed[0].data["attempts"] == MAX_ATTEMPTS


def test_a_stored_answer_and_a_finished_batch_write_their_events_with_the_change(uow: FakeUowFactory) -> None:
    CreateTickets(uow, FakeClock()).execute(CreateTicketsCommand([NewTicket(DEFAULT_OWNER_ID, "E-1", "T", "D")]))
    created = CreateBatch(uow, FakeClock()).execute(CreateBatchCommand())
    assert created is not None
    TriageOneJob(uow, FakeLlm(), FakeClock()).execute(TriageJobCommand(created.job_ids[0], created.batch.id))
    FinishBatch(uow, FakeClock()).execute(FinishBatchCommand(created.batch.id))
    types = [e.type for e in uow.store.events]
    assert types.count(EventType.TICKET_TRIAGED) == 1
    assert types.count(EventType.BATCH_DONE) == 2  # the owner's and the all-owners one


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1:8080/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://93.184.216.34/hook",
        "file:///etc/passwd",
        "http://user:pw@93.184.216.34/hook",
        "http:///no-host",
        "http://93.184.216.34:99999/hook",
        "http://[::1/hook",
        "http://☃.net/hook",  # the client's IDNA refuses it: caught here, not at delivery
        "http://[64:ff9b::a9fe:a9fe]/latest",  # NAT64 of the metadata address
        "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
    ],
)
def test_targets_that_are_not_public_http_are_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookTarget):
        ResolvingTargetPolicy(allow_private=False).check(url)


def test_a_public_address_passes_and_allowing_private_targets_lets_loopback_through() -> None:
    ResolvingTargetPolicy(allow_private=False).check("https://93.184.216.34/hook")
    ResolvingTargetPolicy(allow_private=True).check("http://127.0.0.1:9/hook")
    with pytest.raises(UnsafeWebhookTarget):
        ResolvingTargetPolicy(allow_private=True).check("ftp://127.0.0.1/")  # the scheme rule always holds


def test_a_request_goes_to_the_checked_address_with_the_original_host_and_tls_name() -> None:
    target = ResolvingTargetPolicy(allow_private=False).resolve("https://93.184.216.34:8443/hook?x=1")
    url, host, extensions = pinned("https://93.184.216.34:8443/hook?x=1", target)
    assert str(url) == "https://93.184.216.34:8443/hook?x=1"
    assert host == {"host": "93.184.216.34:8443"} and extensions == {"sni_hostname": "93.184.216.34"}
    named = CheckedTarget("https", "hooks.example.com", None, ip_address("93.184.216.34"))
    url, host, extensions = pinned("https://hooks.example.com/h", named)
    assert str(url) == "https://93.184.216.34/h"
    assert host == {"host": "hooks.example.com"} and extensions == {"sni_hostname": "hooks.example.com"}
    unpinned = ResolvingTargetPolicy(allow_private=True).resolve("http://localhost:9/h")
    assert pinned("http://localhost:9/h", unpinned) == (httpx.URL("http://localhost:9/h"), {}, {})
