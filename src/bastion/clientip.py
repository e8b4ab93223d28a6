"""Who sent the request: the client IP, from the TCP peer and the proxy headers.

Any client can send `X-Forwarded-For`, so a header is only believed when the peer that handed
us the request is a proxy the user trusts (`BASTION_TRUSTED_PROXIES`, default `private`). In a
hop list, the proxies append on the right, so the list is walked from the right and trusted
hops are skipped: the first hop we do not trust is the client, and whatever an attacker wrote
further left is never reached.

Two choices worth knowing:

- When the server does not tell us the peer (None, empty or unparsable), headers are believed:
  some servers (CGI, some ASGI servers, AWS Lambda) do not give the peer, and without the
  headers we would have no client IP at all.
- An empty trust list (`none`) means "no proxy in front of this app": no header is ever
  believed, not even when the peer is unknown, since every header then comes from the client.

Pure and stdlib-only; it runs on every request, so networks are built once, the untrusted peer
returns before any header is read, and hostile headers are cut to a bounded amount of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Final

IPAddress = IPv4Address | IPv6Address

HEADERS: Final = (
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "fastly-client-ip",
    "cf-connecting-ip",
    "cf-connecting-ipv6",
    "forwarded-for",
    "x-forwarded",
)
"""Headers consulted when no header is forced, in this order; the first that yields an IP wins."""

MAX_HOPS: Final = 20
"""Hops looked at in one header, from the right: more is an attack, not a network."""

MAX_HEADER_CHARS: Final = 4096
"""Characters looked at in one header value, from the right."""

# longest sane hop: "[v6 with embedded v4%zone]:port" is well under this
_MAX_ITEM_CHARS: Final = 100

PRIVATE: Final = (
    "127.0.0.0/8",  # loopback
    "10.0.0.0/8",  # RFC 1918
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",  # RFC 6598 carrier-grade NAT
    "169.254.0.0/16",  # link-local
    "::1/128",
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
)
"""What the `private` keyword expands to."""

_Network = IPv4Network | IPv6Network


class TrustedProxies:
    """Which peers/hops are proxies whose headers we believe.

    Immutable and comparable, so it can sit in the frozen Settings.
    """

    __slots__ = ("_hash", "_networks", "_v4", "_v6")

    def __init__(self, networks: Iterable[_Network] = ()) -> None:
        self._networks = tuple(
            sorted(set(networks), key=lambda n: (n.version, n.network_address, n.prefixlen))
        )
        self._hash = hash(self._networks)  # once: it keys a cache looked up on every request
        # (network, mask) as integers: a membership test is then one AND per network.
        self._v4 = tuple(_as_ints(n) for n in self._networks if n.version == 4)
        self._v6 = tuple(_as_ints(n) for n in self._networks if n.version == 6)

    @classmethod
    def parse(cls, spec: str) -> TrustedProxies:
        """From a setting: comma-separated IPs, CIDRs, `private`, or `none` alone.

        Raises ValueError with a one-line message naming the bad entry.
        """
        entries = [entry.strip() for entry in spec.split(",")]
        entries = [entry for entry in entries if entry]
        if not entries:
            raise ValueError("empty list of trusted proxies (use 'none' to trust no proxy)")
        networks: list[_Network] = []
        for entry in entries:
            keyword = entry.lower()
            if keyword == "none":
                if len(entries) > 1:
                    raise ValueError(f"'none' cannot be combined with other entries: {spec!r}")
                return cls()
            if keyword == "private":
                networks.extend(ip_network(cidr) for cidr in PRIVATE)
                continue
            try:
                # strict=False: "10.1.2.3/8" is read as 10.0.0.0/8, which is what was meant.
                networks.append(ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"not an IP address, CIDR network, 'private' or 'none': {entry!r}"
                ) from None
        return cls(networks)

    def __contains__(self, ip: IPAddress) -> bool:
        value = int(ip)
        if isinstance(ip, IPv4Address):
            ranges = self._v4
        elif value >> 32 == 0xFFFF:  # IPv4-mapped: the same host as its IPv4 form
            ranges, value = self._v4, value & 0xFFFFFFFF
        else:
            ranges = self._v6
        return any(value & mask == network for network, mask in ranges)

    def __bool__(self) -> bool:
        """False for `none`: no proxy is trusted, so no header is ever believed."""
        return bool(self._networks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrustedProxies):
            return NotImplemented
        return self._networks == other._networks

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        spec = ",".join(str(n) for n in self._networks) or "none"
        return f"TrustedProxies.parse({spec!r})"


def _as_ints(network: _Network) -> tuple[int, int]:
    return int(network.network_address), int(network.netmask)


def resolve_client_ip(
    peer: str | None,
    headers: Mapping[str, str],
    trusted: TrustedProxies,
    header: str | None = None,
) -> str | None:
    """The client IP in canonical text form, or None when nothing usable was given.

    `peer` is the TCP peer (REMOTE_ADDR, ASGI client host); `headers` has lower-case names with
    repeated headers joined by ","; `header`, when set, is the only header consulted. Never
    raises, whatever the input.
    """
    peer_text: str | None = None
    if peer and len(peer) <= _MAX_ITEM_CHARS:  # longer cannot be an address: keep it uncached
        peer_text, direct = _peer_verdict(peer, trusted)
        if direct:
            return peer_text  # a direct client: its headers say what it likes
    if trusted:
        names = HEADERS if header is None else (header.lower(),)
        for name in names:
            value = headers.get(name)
            if not value or not isinstance(value, str):
                continue
            ip = _client_from_hops(_hops(name, value), trusted)
            if ip is not None:
                return str(ip)
    return peer_text


@lru_cache(maxsize=1024)
def _peer_verdict(peer: str, trusted: TrustedProxies) -> tuple[str | None, bool]:
    """The peer in text form, and whether it is a client talking to us directly (an address
    no trusted proxy has): remembered, for the same reason as `_peer`."""
    ip, text = _peer(peer)
    return text, ip is not None and ip not in trusted


@lru_cache(maxsize=1024)
def _peer(peer: str) -> tuple[IPAddress, str] | tuple[None, None]:
    """The peer, parsed and in text form, remembered: the same few proxies, or the same client
    on a kept-alive connection, hand us most requests, and parsing is most of the cost."""
    ip = parse_ip(peer)
    return (None, None) if ip is None else (ip, str(ip))


def parse_ip(text: str) -> IPAddress | None:
    """One address as proxies write it, or None: strips whitespace, quotes, brackets, a port,
    a zone id, and unwraps IPv4-mapped IPv6."""
    text = text.strip().strip("\"'").strip()
    if not text or len(text) > _MAX_ITEM_CHARS or not text.isascii():
        return None
    if text.startswith("["):  # "[v6]" or "[v6]:port"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "v4:port"; an IPv6 address has at least two colons
        text = text.partition(":")[0]
    try:
        if ":" not in text:
            return IPv4Address(text)
        ip = IPv6Address(text.partition("%")[0])  # zone id: meaningless beyond this host
    except ValueError:
        return None
    return ip.ipv4_mapped or ip


def _hops(name: str, value: str) -> list[str]:
    """The last hops of one header value, nearest last, as address texts (maybe garbage).

    The list is split on every comma, even inside quotes: the hops that matter are the ones
    trusted proxies appended on the right, and they stay intact whatever an attacker put to
    their left (a quote-aware split would let an unclosed quote swallow them).
    """
    if len(value) > MAX_HEADER_CHARS:
        # Keep the right end; the first piece was cut mid-hop, so drop it.
        value = value[-MAX_HEADER_CHARS:].partition(",")[2]
    items = value.rsplit(",", MAX_HOPS)
    if len(items) > MAX_HOPS:
        del items[0]  # everything beyond the last MAX_HOPS hops, unsplit
    if name == "forwarded":
        return [_forwarded_for(item) or "" for item in items]
    if name == "x-forwarded":  # no standard: seen both as a bare list and in Forwarded syntax
        return [(_forwarded_for(item) or "") if "=" in item else item for item in items]
    return items


def _forwarded_for(element: str) -> str | None:
    """The `for=` value of one RFC 7239 element (`for=1.2.3.4;proto=https;by=...`)."""
    for pair in element.split(";"):
        key, _, val = pair.partition("=")
        if key.strip().lower() == "for":
            return val
    return None


def _client_from_hops(hops: list[str], trusted: TrustedProxies) -> IPAddress | None:
    """Walk from the nearest hop: the first untrusted one is the client. When all are trusted
    (a fully private path), the farthest valid hop is. Garbage hops are skipped."""
    farthest: IPAddress | None = None
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            continue
        if ip not in trusted:
            return ip
        farthest = ip
    return farthest
