"""SSRF guard: a webhook target must be http(s) and resolve only to public (global) addresses.

Checked when an endpoint is created or changed, and again before every request (a name may resolve
elsewhere later). `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lifts the address rule (tests, local development).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from triage_pipeline.domain.exceptions import UnsafeWebhookTarget

# Cloud metadata services: named in the refusal, though not being global addresses already refuses them.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class ResolvingTargetPolicy:
    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    def check(self, url: str) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise UnsafeWebhookTarget(f"the URL cannot be parsed ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise UnsafeWebhookTarget(f"the URL must be http or https, not {parts.scheme or 'schemeless'!r}")
        if not parts.hostname:
            raise UnsafeWebhookTarget("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise UnsafeWebhookTarget("the URL must not carry credentials; the signature authenticates the sender")
        try:
            port = parts.port
        except ValueError:
            raise UnsafeWebhookTarget("the URL's port is not a number between 0 and 65535") from None
        if self._allow_private:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeWebhookTarget(f"the host {parts.hostname!r} does not resolve ({exc})") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            # The address itself is not named: an owner key must not be able to map internal DNS through refusals.
            if address in _METADATA:
                raise UnsafeWebhookTarget(f"{parts.hostname} resolves to a cloud metadata address")
            if not address.is_global:
                raise UnsafeWebhookTarget(
                    f"{parts.hostname} resolves to a loopback, private, link-local or reserved address; "
                    "set WEBHOOK_ALLOW_PRIVATE_TARGETS=true only where every such target is trusted"
                )
