"""URL injection (SSRF): user values that change where a request goes fire; values in the path
or query, and user-chosen public hosts, do not."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest

from bastion.detect.urlinject import injected, parse, risky_host

# Values users put in paths and queries, including ones that look like URLs or hosts.
USER_VALUES = [
    "shoes", "red shoes", "café", "東京", "a/b", "1234", "x@y.z", "http://127.0.0.1/",
    "a/../b", "#hash", "?q=1", "50%", "O'Brien", "user:pass", "[::1]", "localhost",
]


def sinks(value: str) -> list[str]:
    """Ways applications put a user's value in the path or query of a fixed host."""
    return [
        f"https://api.example.com/items?{urlencode({'q': value})}",
        f"https://api.example.com/items/{quote(value, safe='')}",
        f"https://api.example.com/search?{urlencode({'q': value, 'page': 2})}#results",
        f"https://cdn.example.net/img/{quote(value)}.png",
    ]


PLAIN_VALUES = ["shoes", "report-2024", "abc123", "item_42", "blue", "v2.1.0"]
PLAIN = [
    (url, value)
    for value in PLAIN_VALUES
    for url in (
        f"https://api.example.com/items?q={value}",  # not encoded: still a query value
        f"https://api.example.com/users/{value}/orders",
        f"https://api.example.com:8443/v1/{value}",
        f"https://svc:secret@api.example.com/{value}",
        f"https://{value}.tenants.example.com/api",  # the app leaves a subdomain to the user
    )
]
# The user chooses the whole URL (webhooks, import from a URL) of a public destination.
PUBLIC_URLS = [
    "https://hooks.slack.com/services/T000/B000/XXXX", "https://example.org/callback",
    "http://www.example.com/feed.xml", "https://8.8.8.8/dns-query",
    "https://hooks.example.org:8443/cb?token=abc", "https://[2606:4700:4700::1111]/dns-query",
    "https://sub.domain.example.co.uk/a/b/c", "https://example.com./trailing-dot",
]
LEGITIMATE = (
    [(url, value) for value in USER_VALUES for url in sinks(value)]
    + PLAIN
    + [(url, url) for url in PUBLIC_URLS]
    + [(url + "/api/v1", url) for url in PUBLIC_URLS[:3]]  # base URL chosen by the user
    + [("https://api.example.com" + "/items/42", "/items/42"),  # base URL without a slash
       ("https://api.example.com/v1/" + "a/../b", "a/../b")]
)


@pytest.mark.parametrize(("url", "value"), LEGITIMATE)
def test_values_in_path_and_query_and_public_hosts_pass(url: str, value: str) -> None:
    assert not injected(url, value)
    assert not injected(url, value, path_inspection=True)


ATTACKS = [
    ("http://127.0.0.1/admin", "http://127.0.0.1/admin"),
    ("http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/meta-data/"),
    ("http://[::1]:8080/", "http://[::1]:8080/"),
    ("http://2130706433/", "http://2130706433/"),  # 127.0.0.1 as one decimal number
    ("http://0x7f.1/", "http://0x7f.1/"),
    ("http://0177.0.0.1/", "http://0177.0.0.1/"),
    ("http://good.example.com@evil.example.net/", "http://good.example.com@evil.example.net/"),
    ("https://api.example.com@evil.example.net/x", "@evil.example.net/x"),
    ("file:///etc/passwd", "file:///etc/passwd"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "gopher://127.0.0.1:6379/_FLUSHALL"),
    ("dict://example.org:11211/stats", "dict://example.org:11211/stats"),
    ("http://localhost:6379/", "http://localhost:6379/"),
    ("http://metadata.google.internal/computeMetadata/v1/",
     "http://metadata.google.internal/computeMetadata/v1/"),
    ("http://127.0.0.1.nip.io/", "http://127.0.0.1.nip.io/"),
    ("http://[::ffff:127.0.0.1]/", "http://[::ffff:127.0.0.1]/"),
    ("http://10.0.0.5/", "http://10.0.0.5/"),
    ("http://redis/", "http://redis/"),  # single label: an internal name
    ("http://0/", "http://0/"),
    ("http://[fd00:ec2::254]/latest/", "http://[fd00:ec2::254]/latest/"),
    ("http://①②⑦.0.0.1/", "http://①②⑦.0.0.1/"),  # normalised to 127.0.0.1 by IDNA
    ("https://evil.example.net/.example.com/api", "evil.example.net/"),  # cut the app's host
    ("https://api.example.com.evil.example.net/x", ".evil.example.net"),  # extended the host
    ("https://api.example.com:6379/x", "6379"),  # changed the port
    ("https://api.example.com\\@evil.example.net/", "\\@evil.example.net"),
    ("https://evil.example.net#.tenants.example.com/api", "evil.example.net#"),
    ("jar:http://evil.example.net/x.jar!/", "jar:http://evil.example.net/x.jar!/"),
    ("http://127.0.0.1/admin", "127.0.0.1"),  # the app wrote only the scheme
    ("http://169.254.169.254/latest", "169.254.169.254/latest"),
]


@pytest.mark.parametrize(("url", "value"), ATTACKS)
def test_changed_destinations_fire(url: str, value: str) -> None:
    assert injected(url, value)


TRAVERSALS = [
    ("https://api.example.com/v1/files/../admin", "../admin"),
    ("https://api.example.com/v1/users/../../internal/keys", "../../internal/keys"),
    ("https://api.example.com/v1/files/%2e%2e/%2e%2e/admin", "%2e%2e/%2e%2e/admin"),
    ("https://api.example.com/v1/files/..\\..\\admin", "..\\..\\admin"),
]


@pytest.mark.parametrize(("url", "value"), TRAVERSALS)
def test_path_traversal_fires_only_with_path_inspection(url: str, value: str) -> None:
    assert injected(url, value, path_inspection=True)
    assert not injected(url, value)


def test_value_must_be_in_the_url() -> None:
    assert not injected("https://api.example.com/items", "http://127.0.0.1")


def test_parse_splits_like_rfc3986_clients() -> None:
    url = parse("http://good\\@evil:81/p?q#f")
    assert url.part(url.host) == "evil"
    assert url.part(url.userinfo) == "good\\@"
    assert url.part(url.port) == ":81"
    assert url.part(url.path) == "/p"
    url = parse("http://[::1]:8080/x")
    assert url.part(url.host) == "[::1]"
    url = parse("example.com:80/x")  # no scheme: urllib3 reads a host first
    assert url.part(url.scheme) == "example.com"


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.1", "0x7f000001", "017700000001", "10.1.2.3", "192.168.0.1",
    "172.16.5.4", "169.254.169.254", "100.100.100.200", "0.0.0.0", "[::1]", "[fe80::1%25eth0]",
    "[::ffff:7f00:1]", "[2002:7f00:1::]", "LOCALHOST", "app.localhost", "db.internal",
    "printer.local", "kubernetes.default.svc", "metadata", "10.0.0.1.example.com",
    "a.b.sslip.io", "xyz.oastify.com", "localtest.me", "%6c%6fcalhost", "127.0.0.1.",
    "999999999999", "224.0.0.1",
])
def test_risky_hosts(host: str) -> None:
    assert risky_host(host)


@pytest.mark.parametrize("host", [
    "example.com", "api.github.com", "8.8.8.8", "[2606:4700:4700::1111]", "xn--bcher-kva.de",
    "bücher.de", "hooks.slack.com", "1.2.3.4", "my-site.example.co.uk",
])
def test_public_hosts(host: str) -> None:
    assert not risky_host(host)
