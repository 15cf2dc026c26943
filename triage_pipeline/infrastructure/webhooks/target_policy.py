"""SSRF guard: a webhook target must be http(s) and resolve only to public (global) addresses.

Checked when an endpoint is created or changed, and again before every request, whose connection then goes
to the very address that was checked (`CheckedTarget.address`): a name that resolves elsewhere a moment
later (DNS rebinding) is never looked up a second time. `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lifts the
address rule (tests, local development); the scheme and URL rules always hold.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

from triage_pipeline.domain.exceptions import UnsafeWebhookTarget

type IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services: named in the refusal, though not being global addresses already refuses them.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# NAT64's well-known prefix: Python counts it global, but a gateway turns it into the IPv4 address it embeds.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PRIVATE = (
    "resolves to a loopback, private, link-local or reserved address; "
    "set WEBHOOK_ALLOW_PRIVATE_TARGETS=true only where every such target is trusted"
)


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A target that passed: the host as written and the address to connect to (None: not resolved, because
    private targets are allowed and the client may resolve the name itself)."""

    scheme: str
    host: str
    port: int | None
    address: IpAddress | None


def _embedded_ipv4(address: IpAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries to (mapped, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _refusal(host: str, address: IpAddress) -> str | None:
    # The address itself is not named: an owner key must not be able to map internal DNS through refusals.
    for candidate in (address, *_embedded_ipv4(address)):
        if candidate in _METADATA:
            return f"{host} resolves to a cloud metadata address"
        if not candidate.is_global:
            return f"{host} {_PRIVATE}"
    return None


def _parts(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        httpx.URL(url)  # the client's own, stricter parse (IDNA) must accept it too
    except (ValueError, httpx.InvalidURL) as exc:  # e.g. an unclosed IPv6 bracket, a host IDNA refuses
        raise UnsafeWebhookTarget(f"the URL cannot be parsed ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookTarget(f"the URL must be http or https, not {parts.scheme or 'schemeless'!r}")
    if not parts.hostname:
        raise UnsafeWebhookTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookTarget("the URL must not carry credentials; the signature authenticates the sender")
    try:
        _ = parts.port  # parsed on access: an out-of-range port raises here
    except ValueError:
        raise UnsafeWebhookTarget("the URL's port is not a number between 0 and 65535") from None
    return parts


class ResolvingTargetPolicy:
    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    def check(self, url: str) -> None:
        self.resolve(url)

    def resolve(self, url: str) -> CheckedTarget:
        """The target with the checked address to connect to; UnsafeWebhookTarget naming why not."""
        parts = _parts(url)
        host = parts.hostname or ""
        if self._allow_private:
            return CheckedTarget(parts.scheme, host, parts.port, None)
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeWebhookTarget(f"the host {host!r} does not resolve ({exc})") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        for address in addresses:  # every address must pass: the client could otherwise pick a refused one
            refusal = _refusal(host, address)
            if refusal is not None:
                raise UnsafeWebhookTarget(refusal)
        return CheckedTarget(parts.scheme, host, parts.port, addresses[0])
