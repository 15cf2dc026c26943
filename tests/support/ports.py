"""Ports for test servers and for hosts where nothing listens."""

from triage_pipeline.infrastructure.embedded_postgres import free_port


def distinct_free_ports(count: int) -> list[int]:
    """Free ports, all different: two calls of `free_port` may return the same one (the kernel hands a port
    out again once its probe socket is closed), which a host list refuses and two servers fight over."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
