"""The client IP: from the peer and proxy headers, without believing spoofed headers."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.clientip import HEADERS, MAX_HEADER_CHARS, MAX_HOPS, TrustedProxies, resolve_client_ip

PRIVATE = TrustedProxies.parse("private")
NONE = TrustedProxies.parse("none")
CLIENT = "203.0.113.9"


def resolve(peer: str | None, headers: dict[str, str] | None = None,
            trusted: TrustedProxies = PRIVATE, header: str | None = None) -> str | None:
    return resolve_client_ip(peer, headers or {}, trusted, header)


# --- direct clients and spoofing ---------------------------------------------------------------

def test_direct_client_is_the_peer() -> None:
    assert resolve("198.51.100.7") == "198.51.100.7"
    assert resolve("2001:DB8:0:0::1") == "2001:db8::1"  # canonical form


def test_nothing_given_is_none() -> None:
    assert resolve(None) is None
    assert resolve("") is None
    assert resolve(None, {"user-agent": "x"}) is None


@pytest.mark.parametrize("name", HEADERS)
def test_headers_from_a_public_peer_are_ignored(name: str) -> None:
    spoofed = {name: "for=1.1.1.1" if name == "forwarded" else "1.1.1.1"}
    assert resolve("198.51.100.7", spoofed) == "198.51.100.7"
    assert resolve("198.51.100.7", spoofed, header=name) == "198.51.100.7"


@pytest.mark.parametrize("name", HEADERS)
def test_each_header_is_believed_from_a_trusted_peer(name: str) -> None:
    value = f"for={CLIENT}" if name == "forwarded" else CLIENT
    assert resolve("10.0.0.1", {name: value}) == CLIENT


def test_trusted_peer_without_headers_is_the_client() -> None:
    assert resolve("127.0.0.1", {"host": "app"}) == "127.0.0.1"
    assert resolve("10.0.0.1", {"x-forwarded-for": "nonsense"}) == "10.0.0.1"


@pytest.mark.parametrize("peer", [None, "", "garbage", "unix:/run/app.sock", "x" * 10_000])
def test_unknown_peer_believes_headers(peer: str | None) -> None:
    # Documented choice: servers that do not give the peer still get a client IP.
    assert resolve(peer, {"x-forwarded-for": f"6.6.6.6, {CLIENT}"}) == CLIENT
    assert resolve(peer, {"x-forwarded-for": "garbage"}) is None


# --- hop lists -----------------------------------------------------------------------------------

def test_one_proxy() -> None:
    assert resolve("10.0.0.1", {"x-forwarded-for": CLIENT}) == CLIENT


def test_chain_of_private_proxies_is_skipped_from_the_right() -> None:
    xff = f"{CLIENT}, 10.0.0.5, 192.168.1.1, 100.64.0.3"
    assert resolve("127.0.0.1", {"x-forwarded-for": xff}) == CLIENT


def test_spoofed_left_part_of_the_list_is_not_reached() -> None:
    # The client sent "X-Forwarded-For: 6.6.6.6"; its proxy appended the real address.
    xff = f"6.6.6.6, 10.0.0.9, {CLIENT}, 10.0.0.5"
    assert resolve("10.0.0.1", {"x-forwarded-for": xff}) == CLIENT


def test_all_private_hops_give_the_leftmost() -> None:
    xff = "192.168.1.20, 10.0.0.5"
    assert resolve("10.0.0.1", {"x-forwarded-for": xff}) == "192.168.1.20"


def test_garbage_hops_are_skipped() -> None:
    xff = f"nonsense, {CLIENT}, <script>, 1.2.3.4\x00, 999.1.1.1, , unknown, 10.0.0.2"
    assert resolve("10.0.0.1", {"x-forwarded-for": xff}) == CLIENT


def test_first_header_with_an_ip_decides() -> None:
    headers = {"x-real-ip": "198.51.100.1", "x-forwarded-for": CLIENT}
    assert resolve("10.0.0.1", headers) == CLIENT
    headers = {"x-real-ip": "198.51.100.1", "x-forwarded-for": "garbage, unknown"}
    assert resolve("10.0.0.1", headers) == "198.51.100.1"
    headers = {"forwarded": "for=198.51.100.2", "cf-connecting-ip": "198.51.100.3"}
    assert resolve("10.0.0.1", headers) == "198.51.100.2"


# --- trust settings ------------------------------------------------------------------------------

def test_explicit_list_trusts_a_public_proxy_and_not_private_ones() -> None:
    trusted = TrustedProxies.parse("198.51.100.0/24, 2001:db8:1::7")
    xff = {"x-forwarded-for": f"{CLIENT}, 198.51.100.8"}
    assert resolve("198.51.100.7", xff, trusted) == CLIENT
    assert resolve("2001:db8:1::7", xff, trusted) == CLIENT
    assert resolve("10.0.0.1", xff, trusted) == "10.0.0.1"  # private is not implied
    # A private hop is now a client, not a proxy to skip.
    xff = {"x-forwarded-for": f"{CLIENT}, 10.0.0.5"}
    assert resolve("198.51.100.7", xff, trusted) == "10.0.0.5"


def test_none_never_believes_headers() -> None:
    xff = {"x-forwarded-for": CLIENT}
    assert resolve("10.0.0.1", xff, NONE) == "10.0.0.1"
    assert resolve("127.0.0.1", xff, NONE, header="x-forwarded-for") == "127.0.0.1"
    # Documented choice: no proxy in front means the headers come from the client itself.
    assert resolve(None, xff, NONE) is None
    assert not NONE
    assert PRIVATE


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.255.0.1", "10.1.2.3", "172.16.0.1",
                                "172.31.255.255", "192.168.0.1", "100.64.0.1", "100.127.255.255",
                                "169.254.1.1", "::1", "fd00::1", "fc00::1", "fe80::1",
                                "::ffff:10.0.0.1"])
def test_private_contains(ip: str) -> None:
    assert ip_address(ip) in PRIVATE


@pytest.mark.parametrize("ip", ["8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1",
                                "192.169.0.1", "11.0.0.1", "2001:db8::1", "fec0::1", "::2",
                                "::ffff:8.8.8.8"])
def test_private_does_not_contain(ip: str) -> None:
    assert ip_address(ip) not in PRIVATE


def test_setting_forms() -> None:
    trusted = TrustedProxies.parse(" PRIVATE , 203.0.113.5,10.1.2.3/8 ,")
    assert ip_address("203.0.113.5") in trusted
    assert ip_address("203.0.113.6") not in trusted
    assert ip_address("10.9.9.9") in trusted  # host bits in a CIDR: the network was meant
    assert ip_address("192.168.3.4") in trusted
    assert TrustedProxies.parse("private, private") == PRIVATE
    assert hash(TrustedProxies.parse("private")) == hash(PRIVATE)
    assert TrustedProxies.parse("10.0.0.0/8") != PRIVATE
    assert TrustedProxies.parse("None") == NONE


@pytest.mark.parametrize(("spec", "named"), [
    ("nope", "nope"),
    ("private, 10.0.0.1, bogus-proxy", "bogus-proxy"),
    ("300.1.1.1", "300.1.1.1"),
    ("10.0.0.0/33", "10.0.0.0/33"),
    ("2001:db8::/129", "2001:db8::/129"),
    ("10.0.0.1\nINJECTED", "10.0.0.1\\nINJECTED"),
    ("private, none", "none"),
    ("", "none"),
    (" , ", "none"),
])
def test_bad_setting_raises_naming_the_entry(spec: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        TrustedProxies.parse(spec)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


# --- forced header -------------------------------------------------------------------------------

def test_forced_header_is_the_only_one_consulted() -> None:
    headers = {"x-forwarded-for": "198.51.100.1", "cf-connecting-ip": CLIENT}
    assert resolve("10.0.0.1", headers, header="cf-connecting-ip") == CLIENT
    assert resolve("10.0.0.1", headers, header="true-client-ip") == "10.0.0.1"
    assert resolve("10.0.0.1", {"x-my-client": CLIENT}, header="X-My-Client") == CLIENT
    assert resolve("10.0.0.1", {"forwarded": f'for="{CLIENT}:80"'}, header="forwarded") == CLIENT


# --- syntax --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    f"for={CLIENT}",
    f'For="{CLIENT}:4711"',
    f"for={CLIENT};proto=https;by=10.0.0.1",
    f"proto=https; FOR = {CLIENT} ;host=example.com",
    f"for={CLIENT}, for=10.0.0.5",
    f"for=6.6.6.6, for={CLIENT}, for=unknown, for=_hidden, proto=http",
    f'for="_gazonk", for={CLIENT};by=_proxy',
])
def test_forwarded_syntax(value: str) -> None:
    assert resolve("10.0.0.1", {"forwarded": value}) == CLIENT


@pytest.mark.parametrize(("value", "expected"), [
    ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
    ('for="[2001:DB8:CAFE::17]"', "2001:db8:cafe::17"),
    ('for="[::ffff:203.0.113.9]"', CLIENT),
    ("for=unknown", "10.0.0.1"),
    ("for=_hidden;proto=https", "10.0.0.1"),
    (f"by={CLIENT}", "10.0.0.1"),  # not a for= parameter
    (f'for="{CLIENT}', CLIENT),  # unclosed quote
])
def test_forwarded_values(value: str, expected: str) -> None:
    assert resolve("10.0.0.1", {"forwarded": value}) == expected


def test_x_forwarded_in_both_syntaxes() -> None:
    assert resolve("10.0.0.1", {"x-forwarded": f"for={CLIENT}"}) == CLIENT
    assert resolve("10.0.0.1", {"x-forwarded": f"{CLIENT}, 10.0.0.3"}) == CLIENT


@pytest.mark.parametrize(("value", "expected"), [
    (f"{CLIENT}:5678", CLIENT),
    (f"  {CLIENT}  ", CLIENT),
    (f'"{CLIENT}"', CLIENT),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("2001:DB8::1", "2001:db8::1"),
    ("2001:db8::1%eth0", "2001:db8::1"),
    ("::ffff:203.0.113.9", CLIENT),
    ("[::ffff:203.0.113.9]:80", CLIENT),
    ("::ffff:cb00:7109", CLIENT),
])
def test_normalised_forms(value: str, expected: str) -> None:
    assert resolve("10.0.0.1", {"x-forwarded-for": value}) == expected


@pytest.mark.parametrize(("peer", "expected"), [
    ("[::1]", "::1"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("[2001:db8::7]:51234", "2001:db8::7"),
    ("198.51.100.7:51234", "198.51.100.7"),
    ("fe80::1%eth0", "fe80::1"),
])
def test_peer_forms(peer: str, expected: str) -> None:
    assert resolve(peer) == expected


def test_mapped_private_peer_is_trusted() -> None:
    assert resolve("::ffff:10.0.0.1", {"x-forwarded-for": CLIENT}) == CLIENT


# --- hostile input -------------------------------------------------------------------------------

def test_hop_cap() -> None:
    # Beyond the last MAX_HOPS hops nothing is looked at; a real chain is never this long.
    xff = ", ".join([CLIENT] + ["10.0.0.1"] * MAX_HOPS)
    assert resolve("10.0.0.1", {"x-forwarded-for": xff}) == "10.0.0.1"
    xff = ", ".join([CLIENT] + ["10.0.0.1"] * (MAX_HOPS - 1))
    assert resolve("10.0.0.1", {"x-forwarded-for": xff}) == CLIENT


def test_cut_header_never_yields_a_mangled_hop() -> None:
    # The cut at MAX_HEADER_CHARS falls inside "211.22.33.44", leaving "11.22.33.44".
    first = "211.22.33.44,"
    last = "10.0.0.1"
    xff = first + " " * (MAX_HEADER_CHARS + 1 - len(first) - len(last)) + last
    assert len(xff) == MAX_HEADER_CHARS + 1
    assert resolve("10.0.0.1", {"x-forwarded-for": xff}) == last


@pytest.mark.parametrize("value", [
    "," * 1_000_000,
    "\x00" * 1_000_000,
    "1" * 1_000_000,
    "for=" + "[" * 1_000_000,
    "garbage," * 200_000 + CLIENT,
    '"' + ";for=" * 200_000,
])
def test_huge_headers(value: str) -> None:
    headers = {name: value for name in HEADERS}
    result = resolve("10.0.0.1", headers)
    assert result in ("10.0.0.1", CLIENT)
    if value.endswith(CLIENT):
        assert result == CLIENT


_ip_texts = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses().map(lambda ip: f"[{ip}]:{ip.version}"),
    st.ip_addresses(v=4).map(lambda ip: f"{ip}:80"),
    st.ip_addresses(v=4).map(lambda ip: f"::ffff:{ip}"),
)
_hostile = st.one_of(
    _ip_texts,
    st.text(max_size=60),
    st.text(alphabet=',;="[]:%._ \x00\t\nabcdef0123456789', max_size=80),
    st.lists(_ip_texts, max_size=30).map(", ".join),
    st.lists(_ip_texts, max_size=5).map(lambda ips: ",".join(f'for="{ip}"' for ip in ips)),
)


@given(
    peer=st.one_of(st.none(), _hostile),
    headers=st.dictionaries(st.sampled_from([*HEADERS, "x-custom"]), _hostile, max_size=4),
    spec=st.sampled_from(["private", "none", "198.51.100.0/24", "private, ::/0", "0.0.0.0/0"]),
    header=st.one_of(st.none(), st.sampled_from([*HEADERS, "x-custom", "X-Custom"])),
)
def test_never_raises_and_returns_a_canonical_ip(
    peer: str | None, headers: dict[str, str], spec: str, header: str | None
) -> None:
    result = resolve_client_ip(peer, headers, TrustedProxies.parse(spec), header)
    assert result is None or str(ip_address(result)) == result
    if result is not None:
        assert ip_address(result).version == 4 or ip_address(result).ipv4_mapped is None
