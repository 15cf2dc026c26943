"""The LLM hosts in Dagster: the external asset `llm_hosts` and its check `llm_hosts_reachable`.

An asset check rather than a sensor: it runs with the other health checks (job `triage_health_checks`, every
15 minutes, or by hand from the asset's page) and costs nothing in between, where a sensor would wake the
daemon every few seconds. It asks each host (`GET /api/version`, `LlmHostsProbe`): a worker's breaker only
knows what that worker's own calls met, and the check runs in a process of its own.

`skip_unless_an_llm_host_answers` is the guard of the batch creators (the schedule and the backlog sensor).
"""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetSpec, MetadataValue, SkipReason, asset_check

from triage_pipeline.application.llm_hosts import CheckLlmHosts, LlmHostsQuery
from triage_pipeline.defs.resources import TriageServices
from triage_pipeline.infrastructure.llm.host_probe import HostHealth, Reachability

LLM_HOSTS_ASSET = "llm_hosts"

llm_hosts = AssetSpec(
    key=LLM_HOSTS_ASSET,
    group_name="triage",
    description=(
        "The Ollama hosts of LLM_BASE_URL, which the triage steps spread their calls over (each up to its `#N` "
        "calls at once per worker process; a host that stops answering is taken out and probed again). Its "
        "check `llm_hosts_reachable` shows each host's state."
    ),
)


@asset_check(
    asset=llm_hosts.key,
    description="Every LLM host answers (GET /api/version); warns naming the hosts that do not.",
)
def llm_hosts_reachable(services: TriageServices) -> AssetCheckResult:
    """Warns while a host is down: triage goes on over the others (or waits, none up) without failing jobs."""
    found = services.container.llm_hosts_probe.check()
    down = [host for host in found if host.state is Reachability.DOWN]
    return AssetCheckResult(
        passed=not down,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(found) - len(down)} of {len(found)} LLM hosts up"
            + (f"; down: {', '.join(host.url for host in down)}" if down else "")
        ),
        metadata={
            "hosts_up": len(found) - len(down),
            "hosts_total": len(found),
            "hosts": MetadataValue.md(_hosts_table(found)),
            **{host.url: _state_line(host) for host in found},
        },
    )


def _state_line(host: HostHealth) -> str:
    if host.state is Reachability.UP:
        return f"up (Ollama {host.version}, {host.latency_ms} ms, {host.concurrency} at once)"
    return f"down ({host.error})"


def _hosts_table(found: list[HostHealth]) -> str:
    lines = ["| host | state | concurrency | version | probe ms | error |", "| --- | --- | --- | --- | --- | --- |"]
    for host in found:
        error = (host.error or "").replace("|", "/")
        lines.append(
            f"| {host.url} | {host.state.value} | {host.concurrency} | {host.version or ''} | {host.latency_ms} "
            f"| {error} |"
        )
    return "\n".join(lines)


def skip_unless_an_llm_host_answers(services: TriageServices) -> SkipReason | None:
    """A skip while no LLM host answers (one `GET /api/version` per host within 1 s, cached 5 s), else None.

    A batch created then would end every attempt `unreached`: not counted, so its jobs would be eligible again
    at once and the next tick would create the same batch, a run and a log row per job each time."""
    hosts = services.use(CheckLlmHosts).execute(LlmHostsQuery())
    if hosts.any_up:
        return None
    return SkipReason(f"no LLM host answers: {', '.join(hosts.down)}; jobs wait instead of using up runs")
