"""Do the LLM hosts answer? Asked by the batch creators (the schedule and the backlog sensor) before they claim
jobs: while no host answers, every attempt would end `unreached` (not counted, so the jobs would be eligible
again at once) and each tick would spend a run and a log row per job on nothing."""

from dataclasses import dataclass

from triage_pipeline.domain.ports import LlmHostsHealth


@dataclass(frozen=True, slots=True)
class LlmHostsQuery:
    """No parameters: it exists so that every use case keeps the one `execute(command)` shape."""


@dataclass(frozen=True, slots=True)
class LlmHostsReachable:
    """The hosts that answered and those that did not, each by its base URL, in the order configured."""

    up: tuple[str, ...]
    down: tuple[str, ...]

    @property
    def any_up(self) -> bool:
        return bool(self.up)


class CheckLlmHosts:
    """Ask each LLM host whether it answers (a light request per host within about a second, cached briefly)."""

    def __init__(self, llm_hosts_health: LlmHostsHealth) -> None:
        self._health = llm_hosts_health

    def execute(self, command: LlmHostsQuery) -> LlmHostsReachable:
        found = self._health.reachability()
        return LlmHostsReachable(
            up=tuple(host.url for host in found if host.up),
            down=tuple(host.url for host in found if not host.up),
        )
