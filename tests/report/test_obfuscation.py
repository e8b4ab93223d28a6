"""Obfuscation: secrets go, attacks stay readable, the input event is never touched."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.report import REDACTED, Obfuscator
from bastion.report.obfuscation import MAX_TEXT_CHARS
from tests.report import make_event, parameter

OBFUSCATOR = Obfuscator()

# Token shapes are assembled at run time so that secret scanners do not flag this file.
JWT = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9"
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
STRIPE_KEY = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GITHUB_TOKEN = "ghp_" + "R2d2C3poBb8Yoda1Luke2Leia3Han4Solo5Chew"
SLACK_TOKEN = "xoxb-" + "123456789012-abcdefGHIJKL"
GOOGLE_KEY = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
PEM_BODY = "MIIEowIBAAKCAQEA7bq2Vz3fKxq9Yt"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
SESSION_HEX = "9f86d081884c7d659a2feaa0c55ad015"
RANDOM_B64 = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"

SECRETS_IN_TEXT = [
    ("Authorization: Bearer abcdef123456789", "abcdef123456789"),
    ("Bearer abcdef123456789 was sent", "abcdef123456789"),
    ("Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    (f"token {JWT} expired", JWT.split(".")[1]),
    (f"key={AWS_KEY}", AWS_KEY),
    (f"aws {AWS_KEY} leaked", AWS_KEY),
    (f"stripe {STRIPE_KEY}", STRIPE_KEY),
    (f"git clone with {GITHUB_TOKEN}", GITHUB_TOKEN),
    (f"slack {SLACK_TOKEN}", SLACK_TOKEN),
    (f"maps {GOOGLE_KEY}", GOOGLE_KEY),
    ("write to alice.smith+shop@example.co.uk please", "alice.smith+shop@example.co.uk"),
    (f"key:\n{PEM}\nend", PEM_BODY),
    (f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}", PEM_BODY),  # cut short by a length limit
    ("card 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("card 5500-0000-0000-0004 ok", "5500-0000-0000-0004"),
    ("amex 378282246310005", "378282246310005"),
    ("user=bob&password=hunter2&next=/", "hunter2"),
    ('{"user": "bob", "password": "hunter 2"}', "hunter 2"),
    ("{'api_key': 'k-123-xyz'}", "k-123-xyz"),
    ("client_secret: s3cr3t-value", "s3cr3t-value"),
    ("Authorization: Token 0123abcd", "0123abcd"),
    ("dsn postgres://admin:pg-pass-1@db:5432/shop", "pg-pass-1"),
    (f"sessionid {SESSION_HEX}", SESSION_HEX),
    (f"secret {RANDOM_B64}", RANDOM_B64),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS_IN_TEXT)
def test_secrets_in_free_text_are_redacted(text: str, secret: str) -> None:
    redacted = OBFUSCATOR.redact_text(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_only_the_secret_goes_the_text_around_it_stays() -> None:
    assert OBFUSCATOR.redact_text("user=bob&password=hunter2&next=/") == (
        "user=bob&password=<redacted>&next=/"
    )
    assert OBFUSCATOR.redact_text("Basic dXNlcjpodW50ZXIy") == "Basic <redacted>"
    assert OBFUSCATOR.redact_text(f"key:\n{PEM}\nend") == "key:\n<redacted>\nend"


READABLE = [
    "1' OR 1=1--",
    "' UNION SELECT password FROM users--",
    "<script>alert(document.cookie)</script>",
    "../../../../etc/passwd",
    "http://127.0.0.1@169.254.169.254/latest/meta-data/",  # SSRF probe: no mailbox
    "order 4111 1111 1111 1112 shipped",  # fails the Luhn check
    "invoice 20261124000123",
    "2026-11-24T20:01:02.123456Z",
    "request 550e8400-e29b-41d4-a716-446655440000",
    "A" * 64,  # an overflow probe, not a secret
    "/api/v1/organisations/members/invitations/pending",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "inside=3; company=acme",
    "the bearer of bad news",
]


@pytest.mark.parametrize("text", READABLE)
def test_attacks_and_ordinary_text_stay_readable(text: str) -> None:
    assert OBFUSCATOR.redact_text(text) == text


def _luhn_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


@given(st.text(alphabet="0123456789", min_size=12, max_size=18), st.sampled_from(["", " ", "-"]))
def test_card_numbers_are_redacted_only_when_luhn_valid(payload: str, separator: str) -> None:
    number = payload + _luhn_digit(payload)
    grouped = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    assert OBFUSCATOR.redact_text(f"card: {grouped} thanks") == f"card: {REDACTED} thanks"
    wrong = payload + str((int(_luhn_digit(payload)) + 1) % 10)
    assert OBFUSCATOR.redact_text(f"order: {wrong} thanks") == f"order: {wrong} thanks"


SENSITIVE_KEYS = [
    ["password"],
    ["user", "Password"],
    ["passwordConfirmation"],
    ["new_pass"],
    ["pwd"],
    ["client_secret"],
    ["access_token"],
    ["refresh_token"],
    ["csrfmiddlewaretoken"],
    ["X-Api-Key"],
    ["apikey"],
    ["private_key"],
    ["authorization"],
    ["set-cookie"],
    ["sessionid"],
    ["PHPSESSID"],
    ["connect.sid"],
    ["jwt"],
    ["signature"],
    ["payment", "card_number"],
    ["creditCard"],
    ["cvv"],
    ["pan"],
    ["otp"],
    ["ssn"],
    ["items", 0, "pin"],
]


@pytest.mark.parametrize("key_path", SENSITIVE_KEYS)
def test_a_sensitive_key_hides_value_and_highlights(key_path: list[object]) -> None:
    event = make_event([parameter(key_path, "x' OR '1'='1", "' OR '1'='1", "OR")])
    redacted = OBFUSCATOR.redact_event(event)["triggers"][0]["rule_matches"][0]["parameters"][0]
    assert redacted["value"] == REDACTED
    assert redacted["highlight"] == [REDACTED, REDACTED]
    assert redacted["key_path"] == key_path  # names are not secret; they say what was hidden


@pytest.mark.parametrize(
    "key",
    ["q", "id", "comment", "author", "inside", "company", "passport", "classname", "user-agent"],
)
def test_ordinary_keys_keep_the_attack(key: str) -> None:
    event = make_event([parameter([key, 0], "1' OR 1=1--", "' OR 1=")])
    redacted = OBFUSCATOR.redact_event(event)["triggers"][0]["rule_matches"][0]["parameters"][0]
    assert redacted["value"] == "1' OR 1=1--"
    assert redacted["highlight"] == ["' OR 1="]


def _first_parameter(event: dict[str, object]) -> dict[str, object]:
    redacted = OBFUSCATOR.redact_event(event)  # type: ignore[arg-type]
    return redacted["triggers"][0]["rule_matches"][0]["parameters"][0]  # type: ignore[no-any-return]


_PARAMETER_TEXTS = st.sampled_from([
    "1' OR 1=1--", "<script>alert(1)</script>", AWS_KEY, f"x {JWT} y", "4111 1111 1111 1111",
    "mail alice@example.com", "plain words", ""])


@given(st.lists(st.one_of(st.sampled_from(["q", "password", "items", "api_key", "page"]),
                          st.integers(0, 3)), max_size=3),
       _PARAMETER_TEXTS, st.lists(_PARAMETER_TEXTS, max_size=3))
def test_one_parameter_is_redacted_as_in_a_whole_event(
        key_path: list[object], value: str, highlights: list[str]) -> None:
    # Span events redact only the matched parameters they show (redacted_parameter), the
    # event log whole events: a secret must go in both the same way.
    matched = parameter(key_path, value, *highlights)
    kept = copy.deepcopy(matched)
    assert OBFUSCATOR.redacted_parameter(matched) == _first_parameter(make_event([matched]))
    assert matched == kept


def test_highlights_that_show_a_secret_go_entirely() -> None:
    value = "mail alice@example.com <script>alert(1)</script>"
    result = _first_parameter(
        make_event([parameter(["comment"], value, "<script", "example.com", "alice@")])
    )
    assert result["value"] == "mail <redacted> <script>alert(1)</script>"
    assert result["highlight"] == ["<script", REDACTED, REDACTED]


def test_highlights_of_a_transformed_value_are_still_matched() -> None:
    # Rules often lower-case first: the highlight then differs from the value in case only.
    value = "TOKEN=AbCdEf123456Xy UNION SELECT 1"
    result = _first_parameter(make_event([parameter(["q"], value, "abcdef123456xy union")]))
    assert "AbCdEf123456Xy" not in str(result)
    assert result["highlight"] == [REDACTED]
    assert result["value"] == "TOKEN=<redacted> UNION SELECT 1"


def test_non_string_values_are_checked_too() -> None:
    result = _first_parameter(make_event([parameter(["amount"], 4111111111111111)]))
    assert result["value"] == REDACTED
    kept = _first_parameter(make_event([parameter(["amount"], 42)]))
    assert kept["value"] == 42


def test_http_part_is_redacted() -> None:
    event = make_event(
        [],
        url=(
            "https://bob:hunter2@shop.example/reset/" + JWT + "?q=1%27%20OR%201%3D1--"
            "&password=hunter2&email=alice%40example.com&next=%2Fhome#top"
        ),
        headers={
            "authorization": "Bearer abcdef123456789",
            "cookie": "sessionid=abc; theme=dark",
            "x-api-key": "k-123",
            "referer": "https://shop.example/login?token=t0k3n-value",
            "accept": ["text/html", "contact alice@example.com"],
            "host": "shop.example",
        },
        user_agent="CustomBot/1.0 (+mailto:bot-admin@crawler.example)",
    )
    http = OBFUSCATOR.redact_event(event)["http"]
    assert http["url"] == (
        "https://bob@shop.example/reset/<redacted>?q=1%27%20OR%201%3D1--"
        "&password=<redacted>&email=<redacted>&next=%2Fhome#top"
    )
    assert http["headers"]["authorization"] == REDACTED
    assert http["headers"]["cookie"] == REDACTED
    assert http["headers"]["x-api-key"] == REDACTED
    assert "t0k3n-value" not in http["headers"]["referer"]
    assert http["headers"]["accept"] == ["text/html", "contact <redacted>"]
    assert http["headers"]["host"] == "shop.example"
    assert http["user_agent"] == "CustomBot/1.0 (+mailto:<redacted>)"
    assert http["client_ip"] == "203.0.113.7"


def test_urls_keep_their_encoding_unless_something_is_redacted() -> None:
    url = "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&page=2"
    assert OBFUSCATOR.redact_url(url) == url
    assert OBFUSCATOR.redact_url("/x?note=card+4111+1111+1111+1111") == "/x?note=card%20<redacted>"
    assert OBFUSCATOR.redact_url("/x?password") == "/x?password"  # a bare name has no value
    assert "secret-pw" not in OBFUSCATOR.redact_url("http://[::1/x?password=secret-pw")


def test_the_input_event_is_never_modified() -> None:
    event = make_event(
        [parameter(["password"], "hunter2", "hunter2"), parameter(["q"], "alice@example.com")],
        url="http://h/?token=abc",
        headers={"authorization": "Bearer abcdef123456789"},
    )
    before = copy.deepcopy(event)
    redacted = OBFUSCATOR.redact_event(event)
    assert event == before
    assert redacted != before


def test_unexpected_shapes_do_not_break_redaction() -> None:
    odd = {"http": "not a dict", "triggers": [None, {"rule_matches": "nope"}], "extra": [1, 2]}
    assert OBFUSCATOR.redact_event(odd) == odd
    deep: dict[str, object] = {}
    node = deep
    for _ in range(1000):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    OBFUSCATOR.redact_event(deep)  # bounded: no RecursionError


def test_long_texts_are_capped_and_nothing_unscanned_is_returned() -> None:
    text = "a " * MAX_TEXT_CHARS + "password=hunter2"
    redacted = OBFUSCATOR.redact_text(text)
    assert len(redacted) <= MAX_TEXT_CHARS
    assert "hunter2" not in redacted
    result = _first_parameter(make_event([parameter(["q"], text)]))
    assert "hunter2" not in str(result)


def test_patterns_can_be_replaced_or_turned_off() -> None:
    only_q = Obfuscator(key_pattern=r"^q$", value_pattern=None)
    result = only_q.redact_event(make_event([parameter(["q"], "x"), parameter(["password"], "y")]))
    parameters = result["triggers"][0]["rule_matches"][0]["parameters"]
    assert [p["value"] for p in parameters] == [REDACTED, "y"]
    assert only_q.redact_text("alice@example.com") == "alice@example.com"

    order_ids = Obfuscator(key_pattern=None, value_pattern=r"order-(?P<secret>\d+)")
    assert order_ids.redact_text("see order-1234 and order-99") == (
        "see order-<redacted> and order-<redacted>"
    )
    assert not order_ids.is_sensitive_key("password")


@pytest.mark.parametrize(("kind", "pattern"), [("key", "(?<=x)y"), ("value", "(unclosed")])
def test_a_bad_pattern_is_a_clear_value_error(kind: str, pattern: str) -> None:
    arguments = {f"{kind}_pattern": pattern}
    with pytest.raises(ValueError, match=f"invalid obfuscation {kind} pattern"):
        Obfuscator(**arguments)


_QUERY_PIECES = st.sampled_from([
    "q=red+shoes", "page=2", "password=hunter2", "token=abc", "x=%40", "note=card+4111+1111+1111+1111",
    f"jwt={JWT}", f"k={AWS_KEY}", "mail=alice%40example.com", "a", "=", "&", "%zz", "%C3", "%A9",
    "sid=1", "inside=yes", "t=Bearer+abcdef123456789", "u=http://u:p@h/", "#frag", "b%3Dc",
    "x\ty", "passwd", "p=%26password%3Dhunter2", f"s={SESSION_HEX}", "é=ü",
])


@given(st.lists(_QUERY_PIECES, max_size=8).map("&".join) | st.text(max_size=40))
def test_a_query_string_is_redacted_as_in_a_whole_url(query: str) -> None:
    """The query string of a span (tracing) skips the URL parser when it can: same result."""
    assert OBFUSCATOR.redact_query(query) == OBFUSCATOR.redact_url("?" + query)[1:]


def test_name_verdicts_stay_right_past_their_memory() -> None:
    obfuscator = Obfuscator()
    for number in range(3000):  # more names than the memory keeps
        assert not obfuscator.is_sensitive_key(f"field{number}")
    assert obfuscator.is_sensitive_key("password")
    assert obfuscator.redact_query("password=hunter2&q=1") == f"password={REDACTED}&q=1"


def test_a_lone_surrogate_does_not_stop_redaction() -> None:
    """JSON can carry a lone surrogate (`"\\ud800"`), which UTF-8 cannot encode."""
    text = "password=hunter2 \ud800 rest"
    redacted = Obfuscator().redact_text(text)
    assert "hunter2" not in redacted
    assert redacted.endswith(" rest")


def test_a_clean_text_is_remembered_and_a_secret_never() -> None:
    obfuscator = Obfuscator()
    attack, secret = "1' UNION SELECT password FROM users--", f"key={AWS_KEY}"
    for _ in range(3):
        assert obfuscator.redact_text(attack) == attack
        assert AWS_KEY not in obfuscator.redact_text(secret)
    assert attack in obfuscator._clean_texts
    assert secret not in obfuscator._clean_texts  # no secret is kept in memory
    # What is remembered is not read again (white box: a planted entry is taken as clean).
    planted = f"token {AWS_KEY}"
    obfuscator._clean_texts[planted] = None
    assert obfuscator.redact_text(planted) == planted


def test_the_memory_of_clean_texts_stays_bounded() -> None:
    obfuscator = Obfuscator()
    for number in range(10_000):
        obfuscator.redact_text(f"plain words {number}")
    obfuscator.redact_text("x" * 5000)  # too long to be remembered
    assert 0 < len(obfuscator._clean_texts) <= 4096
    assert "x" * 5000 not in obfuscator._clean_texts


def test_a_text_clean_as_text_is_still_read_as_a_query() -> None:
    obfuscator = Obfuscator()
    for _ in range(2):
        assert obfuscator.redact_text("session=abc") == "session=abc"
        assert obfuscator.redact_query("session=abc") == "session=<redacted>"
        assert obfuscator.redact_query("color=red") == "color=red"
    assert "session=abc" not in obfuscator._clean_queries
    assert "color=red" in obfuscator._clean_queries
