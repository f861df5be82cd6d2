"""The outbound access of the sandboxes of one process: the egress policy, the per-run caps,
and the OutboundSession each run gets.

The server's settings become an `EgressSettings` (plain data, passed to worker processes
as one JSON argument); the process that holds the sandboxes builds its `Egress` from it
once. A run's workspace may narrow the policy with its own `egress:` list, never widen it:
`Egress.for_workspace` gives the policy both must pass.

    egress = EgressSettings(policy="127.0.0.1", own=(("127.0.0.1", 4000),)).build()
    session = egress.for_workspace(["*.example.com"]).session(deadline=time.monotonic() + 5, on_log=print)
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fnbox.sandboxes.egress import EgressPolicy, IPAddress
from fnbox.sandboxes.outbound import OutboundLimits, OutboundSession

__all__ = ["Egress", "EgressSettings", "own_addresses"]

MEGABYTE = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class EgressSettings:
    """FUNCTIONS_EGRESS and its caps, and the (host, port) fnbox itself listens on."""

    policy: str = "public"
    max_requests: int = 50
    max_concurrency: int = 6
    max_bytes: int = 10 * MEGABYTE
    own: tuple[tuple[str, int], ...] = ()

    def build(self) -> Egress:
        own = [pair for host, port in self.own for pair in own_addresses(host, port)]
        limits = OutboundLimits(
            max_requests=self.max_requests, max_concurrency=self.max_concurrency, max_bytes=self.max_bytes
        )
        return Egress(EgressPolicy.parse(self.policy, own=own), limits)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EgressSettings:
        fields = json.loads(text)
        fields["own"] = tuple((str(host), int(port)) for host, port in fields.get("own", ()))
        return cls(**fields)


class Egress:
    """The policy and caps of every run of this process; a session per run."""

    def __init__(self, policy: EgressPolicy, limits: OutboundLimits) -> None:
        self.policy = policy
        self.limits = limits
        self._narrowed = functools.lru_cache(maxsize=256)(self._narrow)

    def for_workspace(self, entries: Sequence[str] | None) -> Egress:
        """The policy narrowed by a workspace's `egress:` list (None: not narrowed)."""
        if entries is None:
            return self
        return self._narrowed(tuple(entries))

    def _narrow(self, entries: tuple[str, ...]) -> Egress:
        if not entries:
            return Egress(EgressPolicy.parse("none", own=self.policy.own), self.limits)
        return Egress(self.policy.narrowed(entries), self.limits)

    def session(self, *, deadline: float, on_log: Callable[[str], None] | None = None) -> OutboundSession:
        """A new run's requests; call on the event loop that will serve them, and `aclose` it after the run."""
        return OutboundSession(self.policy, self.limits, deadline=deadline, on_log=on_log)


def own_addresses(host: str, port: int) -> Iterable[tuple[IPAddress, int]]:
    """The addresses a connection to fnbox's own listening socket at `host`:`port` could use.

    A wildcard host (`0.0.0.0`, `::`) listens on every interface: loopback, the wildcard
    itself (connecting to it reaches this host) and each address of this host's name.
    """
    names = {host.strip("[]")}
    try:
        wildcard = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names |= {"127.0.0.1", "::1", "0.0.0.0", "::", socket.gethostname()}
    found: set[tuple[IPAddress, int]] = set()
    for name in names:
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for *_, sockaddr in infos:
            found.add((ipaddress.ip_address(str(sockaddr[0]).partition("%")[0]), port))
    return sorted(found, key=str)
