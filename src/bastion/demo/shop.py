"""A small shop that is DELIBERATELY VULNERABLE, so that `bastion demo` has attacks to block.

Run it only on 127.0.0.1 and only for the demo. Every deliberate flaw carries a comment that
starts with "DELIBERATELY VULNERABLE" and a notice on its page. Everything else is written the
safe way (parameterized SQL, autoescaped templates, cleaned file names, XML without DTDs), so
that what Bastion blocks is exactly what the comments list.

Bodies are deterministic: the same request gives the same bytes, on this instance or a fresh
one, because tests compare protected and unprotected responses byte for byte. That is why the
admin account has no password at all (nothing random that a SQL injection could dump): no
password logs in as admin, only the injection does.

Four pages reach a dangerous sink with the user's input, one per kind that exploit
prevention guards: string-built SQL (search, product, login), a file download by name, a URL
preview and a ping tool. The ping tool runs a shell command line on purpose: it is the one
place in Bastion's code that does, because a shell injection needs a shell to inject into.

gunicorn: ``gunicorn "bastion.demo.shop:create_app()"`` (each worker gets its own database).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import secrets
import shutil
import sqlite3
import tempfile
import urllib.request
import xml.parsers.expat
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
)
from flask.typing import RouteCallable
from jinja2 import DictLoader

MAX_BODY_BYTES = 1 << 20  # uploads, JSON and XML bodies; Flask answers 413 beyond
MAX_ROWS = 200  # rows a page or the API lists, whatever an injected query returns
SQL_STEP_BUDGET = 10_000_000  # SQLite VM steps per request: an injected query cannot spin
STEPS_PER_CHECK = 10_000
MAX_NOTE_CHARS = 1000
MAX_QUANTITY = 100
MAX_FILENAME_CHARS = 100
MAX_IMPORTED = 100
MAX_SHOWN_BYTES = 4096  # what a download, a preview or a ping shows at most
FETCH_TIMEOUT_S = 2.0
COOKIE = "shop_session"
FLAG = "FLAG{bastion-demo-secret-exfiltrated}"
XML_TYPES = ("application/xml", "text/xml")
# The files /download serves, and a secret beside (not inside) their folder.
DOWNLOADS = {
    "size-guide.txt": "Shoe sizes: EU 36-48. Jackets: XS-XXL.\n",
    "returns.txt": "Returns are free within 30 days.\n",
}
SECRET_FILE = "secret.txt"

PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("Running shoes", "Light trail running shoes with a grippy sole.", 89.99),
    ("Rain jacket", "Waterproof, breathable, packs into its own pocket.", 129.00),
    ("Water bottle", "Insulated steel bottle, 750 ml.", 24.50),
    ("Trekking poles", "A pair of folding aluminium poles.", 59.90),
    ("Headlamp", "300 lumen rechargeable headlamp.", 34.95),
    ("Wool socks", "Merino hiking socks, two pairs.", 19.99),
    ("Daypack", "22 litre backpack with a rain cover.", 74.00),
    ("Sunglasses", "Polarized category 3 lenses.", 45.00),
    ("Camping stove", "Compact gas stove with a piezo igniter.", 49.95),
    ("Sleeping bag", "Three-season down sleeping bag.", 199.00),
)
# (username, password, email). admin's password is NULL: no password matches it, so the only
# way in is the SQL injection; and there is no secret value for an injection to dump.
USERS: tuple[tuple[str, str | None, str], ...] = (
    ("alice", "wonderland", "alice@example.com"),
    ("bob", "builder", "bob@example.com"),
    ("admin", None, "admin@example.com"),
)

SCHEMA = """
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS secrets;
DROP TABLE IF EXISTS orders;
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
                       price REAL NOT NULL);
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password TEXT,
                    email TEXT NOT NULL);
CREATE TABLE secrets (id INTEGER PRIMARY KEY, flag TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL,
                     quantity INTEGER NOT NULL, note TEXT NOT NULL);
"""

VULNERABLE = (
    '<p class="warning"><strong>This endpoint is deliberately vulnerable</strong>: {}. '
    "It exists to show what Bastion blocks; never expose it.</p>"
)

# (label, endpoint, url arguments): the attack links of the home page.
EXAMPLES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Dump the users' passwords through the search", "search",
     {"q": "' UNION SELECT id, username, password FROM users--"}),
    ("Read the secret flag through a product id", "product",
     {"product_id": "0 UNION SELECT 1, flag, 'read from the secrets table', 0 FROM secrets"}),
    ("Run a script in the search results", "search",
     {"q": "<script>alert(document.domain)</script>"}),
    ("Run a script from a product review", "product",
     {"product_id": "1", "review": "<img src=x onerror=alert(1)>"}),
    ("Read the flag through the JSON API", "api_products",
     {"q": "' UNION SELECT 1, flag, 0 FROM secrets--"}),
    ("Read a file outside the downloads folder", "download", {"name": "../secret.txt"}),
    ("Make the shop fetch a local file", "preview", {"url": "file:///etc/passwd"}),
    ("Run a command through the ping tool", "ping", {"host": "127.0.0.1; id"}),
)

TEMPLATES = {
    "layout.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{% block title %}{% endblock %}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
.warning { background: #fff3cd; border: 1px solid #e0b000; padding: .5rem .75rem; }
.error { background: #f8d7da; border: 1px solid #c33; padding: .5rem .75rem; }
table { border-collapse: collapse; } td, th { padding: .25rem .75rem; text-align: left; }
</style></head>
<body><nav><a href="{{ url_for('home') }}">Home</a> · <a href="{{ url_for('search') }}">Search</a>
 · <a href="{{ url_for('login_form') }}">Log in</a></nav>
<h1>{{ self.title() }}</h1>
{% block body %}{% endblock %}
</body></html>
""",
    "home.html": """{% extends "layout.html" %}{% block title %}Bastion demo shop{% endblock %}
{% block body %}
{% if user %}<p>Signed in as <strong>{{ user }}</strong>.</p>{% endif %}
<p>A tiny outdoor shop with <strong>deliberately vulnerable</strong> pages. Without
protection the attacks below work; with Bastion in block mode they are answered with a block
page instead.</p>
<h2>Pages</h2>
<ul>
<li><a href="{{ url_for('search', q='shoes') }}">Search products</a>
  (SQL injection, reflected XSS)</li>
<li><a href="{{ url_for('product', product_id='1') }}">A product page</a>
  (SQL injection in the id, reflected XSS in <code>review</code>)</li>
<li><a href="{{ url_for('login_form') }}">Log in</a> (SQL injection: authentication bypass)</li>
<li><a href="{{ url_for('download', name='size-guide.txt') }}">Downloads</a> (path traversal),
  <a href="{{ url_for('preview', url='https://example.com/') }}">link preview</a>
  (server-side request forgery), <a href="{{ url_for('ping', host='127.0.0.1') }}">ping
  tool</a> (shell injection)</li>
<li><a href="{{ url_for('api_products', q='shoes') }}">JSON search API</a> (SQL injection);
  <code>POST /api/orders</code> (JSON), <code>POST /api/upload</code> (multipart) and
  <code>POST /api/import</code> (XML) are benign</li>
</ul>
<h2>Try these attacks</h2>
<ul>
{% for label, endpoint, args in examples %}
<li><a href="{{ url_for(endpoint, **args) }}">{{ label }}</a></li>
{% endfor %}
<li>On the <a href="{{ url_for('login_form') }}">login page</a>, sign in as
  <code>admin'--</code> with any password.</li>
</ul>
{% endblock %}
""",
    "search.html": """{% extends "layout.html" %}{% block title %}Search{% endblock %}
{% block body %}
{{ vulnerable|safe }}
<form action="{{ url_for('search') }}"><input name="q" value="{{ q }}">
<button>Search</button></form>
{# DELIBERATELY VULNERABLE (reflected XSS): q is printed without escaping. #}
<h2>Results for {{ q|safe }}</h2>
{% if rows %}<table><tr><th>Product</th><th>Price</th></tr>
{% for row in rows %}
<tr><td><a href="{{ url_for('product', product_id=row[0]) }}">{{ row[1] }}</a></td>
<td>{{ row[2]|money }}</td></tr>
{% endfor %}</table>{% else %}<p>No products found.</p>{% endif %}
{% endblock %}
""",
    "product.html": """{% extends "layout.html" %}{% block title %}{{ product[1] }}{% endblock %}
{% block body %}
{{ vulnerable|safe }}
<p>{{ product[2] }}</p>
<p>Price: {{ product[3]|money }}</p>
{% if review is not none %}
{# DELIBERATELY VULNERABLE (reflected XSS): the review is printed without escaping. #}
<h2>Your review</h2><blockquote>{{ review|safe }}</blockquote>
{% endif %}
<form action="{{ url_for('product', product_id=product_id) }}"><input name="review">
<button>Preview a review</button></form>
{% endblock %}
""",
    "login.html": """{% extends "layout.html" %}{% block title %}Log in{% endblock %}
{% block body %}
{{ vulnerable|safe }}
{% if failed %}<p class="error">Wrong username or password for {{ username }}.</p>{% endif %}
<form method="post" action="{{ url_for('login') }}">
<label>Username <input name="username" value="{{ username }}"></label>
<label>Password <input name="password" type="password"></label>
<button>Log in</button></form>
{% endblock %}
""",
    "welcome.html": """{% extends "layout.html" %}
{% block title %}Welcome {{ username }}{% endblock %}
{% block body %}<p>You are signed in as <strong>{{ username }}</strong>.</p>{% endblock %}
""",
    "tool.html": """{% extends "layout.html" %}{% block title %}{{ title }}{% endblock %}
{% block body %}
{{ vulnerable|safe }}
<form action="{{ url_for(endpoint) }}"><input name="{{ field }}" value="{{ value }}">
<button>Go</button></form>
{% if output is not none %}<pre>{{ output }}</pre>{% endif %}
{% endblock %}
""",
    "error.html": """{% extends "layout.html" %}{% block title %}{{ title }}{% endblock %}
{% block body %}<p class="error">{{ message }}</p>{% endblock %}
""",
}


def create_app(db_path: str | None = None) -> Flask:
    """A shop with a freshly seeded database (a temporary file when `db_path` is None).

    An existing `db_path` is emptied and seeded again, so every start looks the same.
    """
    workdir = Path(tempfile.mkdtemp(prefix="bastion-demo-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    database = Path(db_path) if db_path is not None else workdir / "shop.db"
    uploads = workdir / "uploads"
    uploads.mkdir()
    downloads = workdir / "downloads"
    downloads.mkdir()
    for name, content in DOWNLOADS.items():
        (downloads / name).write_text(content, encoding="utf-8")
    (workdir / SECRET_FILE).write_text(FLAG + "\n", encoding="utf-8")
    _seed(database)

    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(
        SHOP_DATABASE=str(database),
        SHOP_UPLOADS=str(uploads),
        SHOP_DOWNLOADS=str(downloads),
        SHOP_COOKIE_KEY=secrets.token_bytes(32),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.jinja_env.loader = DictLoader(TEMPLATES)
    app.jinja_env.filters["money"] = _money
    app.teardown_appcontext(_close_db)
    app.register_error_handler(sqlite3.Error, _sql_error)
    app.register_error_handler(404, _not_found)
    for rule, view, methods in ROUTES:
        app.add_url_rule(rule, view_func=view, methods=methods)
    return app


def _seed(path: Path) -> None:
    """(Re)create the tables with the fixed products, users and the flag."""
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO products (name, description, price) VALUES (?, ?, ?)",
                         PRODUCTS)
        conn.executemany("INSERT INTO users (username, password, email) VALUES (?, ?, ?)", USERS)
        conn.execute("INSERT INTO secrets (flag) VALUES (?)", (FLAG,))
    conn.close()


def clean_filename(name: str) -> str:
    """A file name safe to join to the upload folder: no folders, no dot files, plain ASCII."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in base)
    kept = kept.lstrip("._")[:MAX_FILENAME_CHARS]
    return kept or "upload"


# --- database -----------------------------------------------------------------------------


def _db() -> sqlite3.Connection:
    """One connection per request, with a step budget so an injected query cannot spin."""
    if "shop_db" not in g:
        conn = sqlite3.connect(current_app.config["SHOP_DATABASE"])
        conn.set_progress_handler(_step_budget(), STEPS_PER_CHECK)
        g.shop_db = conn
    db: sqlite3.Connection = g.shop_db
    return db


def _step_budget() -> Callable[[], int]:
    calls = 0

    def spend() -> int:
        nonlocal calls
        calls += 1  # a non-zero answer interrupts the query
        return 1 if calls * STEPS_PER_CHECK > SQL_STEP_BUDGET else 0

    return spend


def _close_db(_: BaseException | None) -> None:
    conn = g.pop("shop_db", None)
    if conn is not None:
        conn.close()


def _rows(sql: str) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = _db().execute(sql).fetchmany(MAX_ROWS)
    return [tuple(_plain(value) for value in row) for row in rows]


def _plain(value: object) -> object:
    """Injected queries may return blobs; show them as text rather than failing."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _money(value: object) -> str:
    """Prices with two decimals; whatever an injected query put in the column, as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def _search(q: str) -> list[tuple[object, ...]]:
    # DELIBERATELY VULNERABLE (SQL injection): q is pasted into the statement, so
    # q = "' UNION SELECT id, username, password FROM users--" lists the users' passwords.
    return _rows(f"SELECT id, name, price FROM products WHERE name LIKE '%{q}%'")


def _sql_error(exc: Exception) -> tuple[Response | str, int]:
    # DELIBERATELY VULNERABLE (information disclosure): the SQLite message is shown, as bad
    # apps do, which helps an attacker shape an injection. It is escaped, though.
    if request.path.startswith("/api/"):
        return jsonify(error=str(exc)), 500
    return render_template("error.html", title="Database error", message=str(exc)), 500


def _not_found(_: Exception) -> tuple[Response | str, int]:
    if request.path.startswith("/api/"):
        return jsonify(error="not found"), 404
    return render_template("error.html", title="Not found", message="No such page."), 404


# --- session cookie -----------------------------------------------------------------------


def _sign(username: str) -> str:
    value = username[:64].encode().hex()
    return f"{value}.{_mac(value)}"


def _signed_in_user() -> str | None:
    value, _, mac = request.cookies.get(COOKIE, "").partition(".")
    if not mac or not hmac.compare_digest(mac.encode(), _mac(value).encode()):
        return None
    try:
        return bytes.fromhex(value).decode()
    except ValueError:
        return None


def _mac(value: str) -> str:
    key: bytes = current_app.config["SHOP_COOKIE_KEY"]
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


# --- pages --------------------------------------------------------------------------------


def home() -> str:
    return render_template("home.html", user=_signed_in_user(), examples=EXAMPLES)


def search() -> str:
    q = request.args.get("q", "")
    return render_template("search.html", q=q, rows=_search(q), vulnerable=VULNERABLE.format(
        "<code>q</code> is pasted into SQL (injection) and into this page (reflected XSS)"))


def product(product_id: str) -> str:
    # DELIBERATELY VULNERABLE (SQL injection): the path segment goes into SQL unquoted, so
    # /product/0 UNION SELECT 1, flag, '', 0 FROM secrets shows the flag.
    rows = _rows(f"SELECT id, name, description, price FROM products WHERE id = {product_id}")
    if not rows:
        abort(404)
    return render_template(
        "product.html", product=rows[0], product_id=product_id,
        review=request.args.get("review"), vulnerable=VULNERABLE.format(
            "the id is pasted into SQL (injection); <code>review</code> is reflected unescaped"))


def login_form() -> str:
    return _login_page(failed=False, username="")


def login() -> Response | tuple[str, int]:
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    # DELIBERATELY VULNERABLE (SQL injection): username "admin'--" comments out the password
    # check and signs in as admin.
    rows = _rows(f"SELECT id, username FROM users "
                 f"WHERE username = '{username}' AND password = '{password}'")
    if not rows:
        return _login_page(failed=True, username=username), 401
    name = str(rows[0][1])
    response = make_response(render_template("welcome.html", username=name))
    response.set_cookie(COOKIE, _sign(name), httponly=True, samesite="Lax")
    return response


def _login_page(failed: bool, username: str) -> str:
    return render_template("login.html", failed=failed, username=username,
                           vulnerable=VULNERABLE.format("the login form is pasted into SQL"))


def download() -> tuple[str, int]:
    name = request.args.get("name", "")
    output, status = None, 200
    if name:
        # DELIBERATELY VULNERABLE (path traversal): the name is joined to the folder as it
        # is, so name=../secret.txt reads the file beside the folder, and an absolute name
        # reads any file the shop can.
        path = current_app.config["SHOP_DOWNLOADS"] + "/" + name
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                output = handle.read(MAX_SHOWN_BYTES)
        except OSError as exc:
            output, status = f"cannot read {name}: {exc.strerror}", 404
    return _tool("Downloads", "download", "name", name, output,
                 "the file name is joined to the folder unchecked (path traversal)"), status


def preview() -> tuple[str, int]:
    url = request.args.get("url", "")
    output, status = None, 200
    if url:
        # DELIBERATELY VULNERABLE (server-side request forgery): the shop fetches whatever
        # URL it is given, internal addresses and file:// included.
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
                output = answer.read(MAX_SHOWN_BYTES).decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            output, status = f"cannot fetch {url}: {exc}", 502
    return _tool("Link preview", "preview", "url", url, output,
                 "the shop fetches any URL it is given (server-side request forgery)"), status


def ping() -> str:
    host = request.args.get("host", "")
    output = None
    if host:
        # DELIBERATELY VULNERABLE (shell injection): the host is pasted into a shell command
        # line, so host="127.0.0.1; id" runs id as well.
        with os.popen(f"ping -c 1 -W 1 {host} 2>&1") as pipe:
            output = pipe.read(MAX_SHOWN_BYTES)
    return _tool("Ping", "ping", "host", host, output,
                 "the host is pasted into a shell command line (shell injection)")


def _tool(title: str, endpoint: str, field: str, value: str, output: str | None,
          flaw: str) -> str:
    return render_template("tool.html", title=title, endpoint=endpoint, field=field,
                           value=value, output=output, vulnerable=VULNERABLE.format(flaw))


def health() -> Response:
    return Response("ok", mimetype="text/plain")


# --- JSON API -----------------------------------------------------------------------------


def api_products() -> Response:
    rows = _search(request.args.get("q", ""))
    return jsonify(
        products=[{"id": r[0], "name": r[1], "price": r[2]} for r in rows],
        warning="This endpoint is deliberately vulnerable: q is pasted into SQL (injection).")


def api_orders() -> tuple[Response, int]:
    """Benign: a JSON body that is validated, stored with parameters and echoed."""
    order = request.get_json(silent=True)
    if not isinstance(order, dict):
        return jsonify(error="expected a JSON object"), 400
    product_id, quantity = order.get("product_id"), order.get("quantity", 1)
    note = order.get("note", "")
    if not (_is_int(product_id, 1, 2**31) and _is_int(quantity, 1, MAX_QUANTITY)
            and isinstance(note, str) and len(note) <= MAX_NOTE_CHARS):
        return jsonify(error="expected product_id, quantity (1-100) and a short note"), 400
    db = _db()
    found = db.execute("SELECT name, price FROM products WHERE id = ?", (product_id,)).fetchone()
    if found is None:
        return jsonify(error="no such product"), 404
    db.execute("INSERT INTO orders (product_id, quantity, note) VALUES (?, ?, ?)",
               (product_id, quantity, note))
    db.commit()
    return jsonify(product_id=product_id, product=found[0], quantity=quantity,
                   total=round(found[1] * quantity, 2), note=note), 201


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def api_upload() -> tuple[Response, int]:
    """Benign: a multipart file saved under a cleaned name in the demo's upload folder."""
    upload = request.files.get("file")
    if upload is None:
        return jsonify(error="expected a multipart field named file"), 400
    name = clean_filename(upload.filename or "")
    data = upload.read()
    (Path(current_app.config["SHOP_UPLOADS"]) / name).write_bytes(data)
    return jsonify(name=name, size=len(data)), 201


def api_import() -> tuple[Response, int]:
    """Benign: previews a product catalog in XML; documents with a DTD are refused."""
    if request.mimetype not in XML_TYPES:
        return jsonify(error="expected application/xml"), 415
    try:
        catalog = _read_catalog(request.get_data())
    except (ValueError, xml.parsers.expat.ExpatError) as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(catalog), 200


class _Catalog:
    """Counts elements and keeps the attributes of each <product>, as expat reports them."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.elements = 0
        self.products: list[dict[str, str]] = []

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.root = self.root or tag
        self.elements += 1
        if tag == "product" and len(self.products) < MAX_IMPORTED:
            self.products.append(attributes)


def _refuse_dtd(*_: object) -> NoReturn:
    # The DTD is where entities are declared: refusing it rules out XXE and entity bombs.
    raise ValueError("XML document type declarations are not accepted")


def _read_catalog(raw: bytes) -> dict[str, object]:
    catalog = _Catalog()
    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = catalog.start
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.Parse(raw, True)
    return {"root": catalog.root, "elements": catalog.elements, "products": catalog.products}


ROUTES: tuple[tuple[str, RouteCallable, list[str]], ...] = (
    ("/", home, ["GET"]),
    ("/search", search, ["GET"]),
    ("/product/<product_id>", product, ["GET"]),
    ("/login", login_form, ["GET"]),
    ("/login", login, ["POST"]),
    ("/download", download, ["GET"]),
    ("/preview", preview, ["GET"]),
    ("/ping", ping, ["GET"]),
    ("/health", health, ["GET"]),
    ("/api/products", api_products, ["GET"]),
    ("/api/orders", api_orders, ["POST"]),
    ("/api/upload", api_upload, ["POST"]),
    ("/api/import", api_import, ["POST"]),
)
