"""URL injection (SSRF): did a user's value change where an outgoing request goes?

An application that fetches `https://api.example.com/items?q=` + value lets the user choose
the path and the query, never the destination. The value is an exploit when it reaches into
the scheme, the user-info, the host or the port of the URL actually fetched. When the
application leaves the whole host to the user (webhooks, "import from URL"), choosing a host
is the feature, so only destinations no outside user should reach are flagged: internal and
special-purpose addresses, numeric hosts written in decimal, octal or hex, cloud metadata
endpoints, single-label and internal names, names that resolve to any IP the name spells
(nip.io and its kind, used for DNS rebinding), and credentials placed before the host.

URLs are split the way RFC 3986 clients (urllib3, httpx) split them: the authority ends at the
first `/`, `?` or `#`, the user-info at its last `@`, so `http://good\\@evil/` goes to `evil`.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Final, NamedTuple
from urllib.parse import unquote

from bastion.detect.pathinject import climbs_out, occurrences

__all__ = ["Url", "injected", "parse", "risky_host"]

SAFE_SCHEMES: Final = frozenset({"http", "https"})

# Names that resolve to the address they spell (127.0.0.1.nip.io), or to loopback: the classic
# ways to reach an internal address through a host name, and DNS-rebinding services.
_ADDRESS_NAMES: Final = (
    "nip.io", "xip.io", "sslip.io", "nip.direct", "xip.name", "backname.io", "localtest.me",
    "lvh.me", "vcap.me", "fuf.me", "localh.st", "traefik.me", "localhost.direct", "1u.ms",
    "rbndr.us", "rebind.it", "rebind.network", "lock.cmpxchg8b.com",
)
# Out-of-band interaction services: a request there is an attacker probing for SSRF.
_PROBE_NAMES: Final = (
    "burpcollaborator.net", "oastify.com", "oast.pro", "oast.live", "oast.site", "oast.online",
    "oast.fun", "oast.me", "interact.sh", "interactsh.com", "dnslog.cn", "ceye.io",
    "canarytokens.com",
)
# Cloud metadata services reached by name.
_METADATA_NAMES: Final = (
    "metadata.google.internal", "metadata.goog", "metadata.tencentyun.com",
    "metadata.packet.net", "metadata.platformequinix.com", "instance-data.ec2.internal",
)
# Suffixes that only exist on private networks (RFC 6762, RFC 8375, Kubernetes, common LANs).
_INTERNAL_SUFFIXES: Final = (
    "localhost", "local", "localdomain", "internal", "intranet", "lan", "home.arpa", "svc",
    "corp", "private",
)
_LOOPBACK_NAMES: Final = frozenset({"ip6-localhost", "ip6-loopback", "broadcasthost"})
_DOTS: Final = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


class Url(NamedTuple):
    """Offsets of the parts of a URL; a missing part has an empty span."""

    text: str
    scheme: tuple[int, int]  # without the ':'
    userinfo: tuple[int, int]  # with its '@'
    host: tuple[int, int]  # with IPv6 brackets
    port: tuple[int, int]  # with its ':'
    path: tuple[int, int]
    has_authority: bool

    def part(self, span: tuple[int, int]) -> str:
        return self.text[span[0]:span[1]]


def parse(url: str) -> Url:
    """Split `url` into spans (RFC 3986, with urllib3's reading of a URL without a scheme)."""
    n = len(url)
    i = 0
    while i < n and (url[i] <= " "):  # clients strip leading spaces and controls
        i += 1
    scheme = (i, i)
    j = i
    if j < n and url[j].isascii() and url[j].isalpha():
        while j < n and url[j].isascii() and (url[j].isalnum() or url[j] in "+-."):
            j += 1
        if j < n and url[j] == ":":
            scheme = (i, j)
            i = j + 1
    slashes = url[i:i + 2]
    if len(slashes) == 2 and all(c in "/\\" for c in slashes):
        authority_start = i + 2
    elif scheme[0] == scheme[1] and not url.startswith("/", i):
        authority_start = i  # "example.com/x": urllib3 reads a host first
    else:
        end = _first(url, i, "?#")
        return Url(url, scheme, (i, i), (i, i), (i, i), (i, end), False)
    authority_end = _first(url, authority_start, "/?#")
    at = url.rfind("@", authority_start, authority_end)
    host_start = at + 1 if at >= 0 else authority_start
    userinfo = (authority_start, host_start)
    if url.startswith("[", host_start):
        bracket = url.find("]", host_start, authority_end)
        host_end = bracket + 1 if bracket >= 0 else authority_end
        colon = host_end if url.startswith(":", host_end) else -1
    else:
        colon = url.rfind(":", host_start, authority_end)
        host_end = colon if colon >= 0 else authority_end
    port = (colon, authority_end) if colon >= 0 else (authority_end, authority_end)
    path = (authority_end, _first(url, authority_end, "?#"))
    return Url(url, scheme, userinfo, (host_start, host_end), port, path, True)


def _first(text: str, start: int, chars: str) -> int:
    """Offset of the first of `chars` at or after `start`, or len(text)."""
    positions = [p for p in (text.find(c, start) for c in chars) if p >= 0]
    return min(positions, default=len(text))


def _numeric_ipv4(host: str) -> tuple[int, bool] | None:
    """inet_aton's reading of a host (`2130706433`, `0x7f.1`, `0177.0.0.1`): (address,
    written in canonical dotted decimal); None when the host is not a number."""
    parts = host.split(".")
    if len(parts) > 4 or not all(parts):
        return None
    numbers: list[int] = []
    canonical = len(parts) == 4
    for part in parts:
        if part[:2] in ("0x", "0X"):
            digits, base = part[2:], 16
            canonical = False
        elif len(part) > 1 and part[0] == "0":
            digits, base = part[1:], 8
            canonical = False
        else:
            digits, base = part, 10
        if digits and not all(c in "0123456789abcdef"[:base] for c in digits.lower()):
            return None
        if len(digits) > 12:
            return (-1, False)  # a number too long to be an address: no sane host
        numbers.append(int(digits, base) if digits else 0)
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (4 - len(head)):
        return (-1, False)
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return value, canonical


def _risky_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return not address.is_global or address.is_multicast or address.is_reserved
    if address.ipv4_mapped is not None or address.sixtofour is not None or address.teredo:
        return True
    return not address.is_global or address not in _GLOBAL_UNICAST


def _under(host: str, names: tuple[str, ...] | frozenset[str]) -> bool:
    return any(host == name or host.endswith("." + name) for name in names)


def risky_host(host: str) -> bool:
    """Whether a user-chosen host reaches somewhere internal, special or deceptive (see the
    module docstring); `host` is the raw text between the user-info and the port."""
    text = unquote(host)
    text = unicodedata.normalize("NFKC", text).translate(_DOTS)
    text = "".join(c for c in text if c not in "\t\r\n").strip().lower().rstrip(".")
    if not text:
        return True
    if text.startswith("[") or ":" in text:
        try:
            return _risky_ip(ipaddress.IPv6Address(text.strip("[]").split("%")[0]))
        except ValueError:
            return True
    numeric = _numeric_ipv4(text)
    if numeric is not None:
        value, canonical = numeric
        return value < 0 or not canonical or _risky_ip(ipaddress.IPv4Address(value))
    labels = text.split(".")
    if len(labels) > 4 and _numeric_ipv4(".".join(labels[:4])) is not None:
        return True  # 10.0.0.1.example.com: a wildcard-DNS name spelling an address
    return (
        "." not in text  # single label: resolved through the search domains, inside
        or text in _LOOPBACK_NAMES
        or _under(text, _INTERNAL_SUFFIXES)
        or _under(text, _METADATA_NAMES)
        or _under(text, _ADDRESS_NAMES)
        or _under(text, _PROBE_NAMES)
        or not all(c in _HOST_CHARS or not c.isascii() for c in text)
    )


def _overlaps(start: int, end: int, span: tuple[int, int]) -> bool:
    return start < span[1] and end > span[0]


def _reshapes(url: Url, start: int, end: int, path_inspection: bool) -> bool:
    text = url.text
    path_start = url.path[0]
    if start >= path_start:
        return path_inspection and _traverses(url, start, end)
    scheme_start, scheme_end = url.scheme
    reaches_scheme = scheme_start < scheme_end and start <= scheme_end and end > scheme_start
    if reaches_scheme and url.part(url.scheme).lower() not in SAFE_SCHEMES:
        return True  # the value picks the protocol (or its ':')
    if not url.has_authority:
        return False
    host_start, host_end = url.host
    userinfo = url.part((max(start, url.userinfo[0]), min(end, url.userinfo[1])))
    if host_end > host_start and start <= host_start and end >= host_end:
        # The user chose the host: judge where it leads.
        if risky_host(url.part(url.host)) or userinfo:
            return True
        # ...or the application meant to write more of the authority after the value
        # ("https://" + value + ".example.com") and the value cut it off.
        return start > 0 and path_start < end < len(text) and text[end] in ".:-@"
    if "@" in userinfo or any(c in "/\\?#" or c.isspace() for c in userinfo):
        return True  # user-info tricks: the value moves the host after an '@'
    if _overlaps(start, end, url.port):
        return True
    if not _overlaps(start, end, url.host):
        return False
    written = text[max(start, host_start):min(end, host_end)]
    if not all(c in _HOST_CHARS for c in written):
        return True  # characters that no host label holds: parser confusion
    if end >= host_end:
        # The value ends the host: a name the app wrote in full was extended
        # (api.example.com + .evil.com), or the app left the domain to the user (www. + x).
        return not text[host_start:start].endswith(".") or risky_host(url.part(url.host))
    return False


def _traverses(url: Url, start: int, end: int) -> bool:
    path_start, path_end = url.path
    if start >= path_end or ".." not in url.text[start:end].replace("%2e", ".").replace(
            "%2E", "."):
        return False
    path = url.text[path_start:path_end].replace("\\", "/")
    return climbs_out(path, start - path_start, min(end, path_end) - path_start,
                      percent_dots=True)


def injected(url: str, param: str, path_inspection: bool = False) -> bool:
    """True when `param`, found in the fetched `url`, changes its scheme, user-info, host or
    port, or chooses a risky host; with `path_inspection`, also when it climbs out of the
    URL path the application wrote with `..` segments."""
    if not param:
        return False
    parsed = parse(url)
    return any(
        _reshapes(parsed, start, start + len(param), path_inspection)
        for start in occurrences(url, param)
    )
