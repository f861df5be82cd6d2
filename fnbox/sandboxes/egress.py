"""Which addresses a function's outbound requests may reach: the egress policy.

The policy is checked on the address a connection is actually made to, after DNS
resolution and on every redirect hop, never on the text of a URL: a name that resolves to
a private address is refused like the address itself, and a name resolved once is
connected to at that address, so DNS rebinding cannot slip past the check.

    policy = EgressPolicy.parse("public")          # the default: public addresses only
    policy = EgressPolicy.parse("none")            # no outbound request at all
    policy = EgressPolicy.parse("api.example.com, *.stripe.com, 10.0.0.0/8, 127.0.0.1")
    policy.check("api.example.com", ip_address("93.184.215.14"), 443)   # raises EgressRefused

An allow-list names hosts (exact names or `*.domain` patterns) and networks (addresses or
CIDR ranges). A listed host may be reached at a public address only; a listed network
may be reached whatever the name used, which is how a private range is opened on purpose.
A workspace may narrow the server's policy with a list of its own, never widen it: a
request must pass both.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["EgressPolicy", "EgressRefused", "IPAddress", "canonical_address", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 prefixes that carry an IPv4 address (NAT64, the IPv4-compatible form): the policy
#: judges the IPv4 address inside.
_EMBEDDING_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))


class EgressRefused(Exception):
    """An outbound request the policy does not allow; the message names the host and the rule."""


def canonical_address(address: IPAddress) -> IPAddress:
    """The address a connection really reaches: the IPv4 inside an IPv4-mapped, 6to4 or NAT64 form."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        for network in _EMBEDDING_IPV4:
            if (
                address in network
                and address != ipaddress.IPv6Address("::")
                and address != ipaddress.IPv6Address("::1")
            ):
                return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast and not address.is_reserved


def _normal_host(host: str) -> str:
    """A host name as DNS compares it: lower case, without the root's trailing dot, IDNA-encoded."""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@dataclass(frozen=True)
class EgressPolicy:
    #: "public", "none" or "list".
    mode: str
    hosts: frozenset[str] = frozenset()
    #: `*.example.com` is kept as ".example.com": it matches names under it, not the bare domain.
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    #: (address, port) pairs never reachable whatever the policy: fnbox's own listening socket.
    own: frozenset[tuple[IPAddress, int]] = field(default_factory=frozenset)
    #: The wider policy this one narrows (a workspace's list within the server's): both must allow.
    within: EgressPolicy | None = None

    @classmethod
    def parse(cls, text: str, *, own: Iterable[tuple[IPAddress, int]] = ()) -> EgressPolicy:
        """Read `FUNCTIONS_EGRESS`; raise ValueError naming an entry that is none of the forms."""
        entries = [entry.strip() for entry in text.split(",") if entry.strip()]
        if entries in ([], ["public"]):
            return cls("public", own=frozenset(own))
        if entries == ["none"]:
            return cls("none", own=frozenset(own))
        return cls.from_entries(entries, own=own)

    @classmethod
    def from_entries(cls, entries: Sequence[str], *, own: Iterable[tuple[IPAddress, int]] = ()) -> EgressPolicy:
        """An allow-list policy (a workspace's `egress:` list, or the setting's)."""
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError(f"egress entry {entry!r} is not a host, a *.domain pattern, an address or a range")
            text = entry.strip()
            if text in ("public", "none"):
                raise ValueError(f"egress entry {text!r} can only stand alone")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if text.startswith("*."):
                suffix = _normal_host(text[1:])
                if not _looks_like_host(suffix[1:]):
                    raise ValueError(f"egress entry {text!r} is not a valid *.domain pattern")
                suffixes.append(suffix)
            elif _looks_like_host(_normal_host(text)):
                hosts.add(_normal_host(text))
            else:
                raise ValueError(f"egress entry {text!r} is not a host, a *.domain pattern, an address or a range")
        return cls("list", frozenset(hosts), tuple(suffixes), tuple(networks), frozenset(own))

    def check(self, host: str, address: IPAddress, port: int) -> None:
        """Allow a connection to `address`:`port`, reached for `host`; raise EgressRefused otherwise."""
        if self.within is not None:
            self.within.check(host, address, port)
        real = canonical_address(address)
        if (real, port) in self.own or (address, port) in self.own:
            raise EgressRefused(f"{host} ({real}) port {port} is this fnbox service itself")
        if self.mode == "none":
            raise EgressRefused(f"{host}: outbound requests are turned off (FUNCTIONS_EGRESS=none)")
        if self.mode == "public":
            if not _is_public(real):
                raise EgressRefused(
                    f"{host} resolves to {real}, which is not a public address (FUNCTIONS_EGRESS=public)"
                )
            return
        if any(real in network for network in self.networks if network.version == real.version):
            return
        if self.names(host):
            if _is_public(real):
                return
            raise EgressRefused(
                f"{host} is allowed, but resolves to {real}, which is not a public address: list its range to allow it"
            )
        raise EgressRefused(f"{host} ({real}) is not in the egress allow-list")

    def narrowed(self, entries: Sequence[str]) -> EgressPolicy:
        """This policy narrowed by a workspace's `egress:` list: a request must pass both."""
        return dataclasses.replace(EgressPolicy.from_entries(entries, own=self.own), within=self)

    def names(self, host: str) -> bool:
        """Whether `host` is one of the listed names or patterns."""
        name = _normal_host(host)
        return name in self.hosts or any(name.endswith(suffix) for suffix in self.suffixes)


def _looks_like_host(name: str) -> bool:
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() for label in labels
    )


def resolve(policy: EgressPolicy, host: str, port: int) -> IPAddress:
    """The address to connect to for `host`: the first that DNS gives and the policy allows.

    Blocking (getaddrinfo): call it off the event loop. Whatever the host text is (a name,
    `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`, `fe80::1%eth0`), the check is made on the
    address the resolver turns it into, which is the one the caller then connects to.
    """
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise EgressRefused(f"{host}: cannot be resolved ({exc})") from None
    refusal: EgressRefused | None = None
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        try:
            policy.check(host, address, port)
        except EgressRefused as exc:
            refusal = refusal or exc
            continue
        return address
    raise refusal or EgressRefused(f"{host}: the resolver gave no address")
