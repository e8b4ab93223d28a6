"""A small Flask app for the end-to-end tests: every kind of input, nothing protected here
(protection comes from `bastion-run`, as a user would add it)."""

from __future__ import annotations

import json

from flask import Flask, Response, request

import bastion

app = Flask(__name__)


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/search")
def search() -> Response:
    q = request.args.get("q", "")
    return Response(json.dumps({"query": q, "results": [q.upper()]}),
                    mimetype="application/json", headers={"X-App": "flask"})


@app.get("/item/<item_id>")
def item(item_id: str) -> dict[str, str]:
    return {"item": item_id}


@app.post("/submit")
def submit() -> Response:
    # Reads the body as the app would: the protected app must see exactly the same bytes.
    body = request.get_data()
    info = {"length": len(body), "form": request.form.to_dict(flat=False),
            "files": sorted(f.filename or "" for f in request.files.values())}
    return Response(json.dumps(info, sort_keys=True), mimetype="application/json")


@app.get("/login-as")
def login_as() -> str:
    bastion.set_user(request.args.get("user", ""))
    return "welcome"


@app.get("/refuse")
def refuse() -> str:
    bastion.block_request()
    return "not reached"
