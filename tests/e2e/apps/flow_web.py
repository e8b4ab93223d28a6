"""Service A of the attack-flow test: a Flask service (under gunicorn, protected) whose
pages call service B (`FLOW_API_URL`) with requests.

`/orders/<id>` asks B for the customer by id; its `note` parameter goes nowhere (an attack
put there is A's alone). `/lookup?name=` hands the name on to B.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from flask import Flask, request

API = os.environ.get("FLOW_API_URL", "http://127.0.0.1:8000")

app = Flask(__name__)


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/orders/<int:customer_id>")
def orders(customer_id: int) -> dict[str, Any]:
    reply = requests.get(f"{API}/customers/{customer_id}", timeout=30)
    reply.raise_for_status()
    return {"customer": reply.json()["customers"], "note": len(request.args.get("note", ""))}


@app.get("/lookup")
def lookup() -> dict[str, Any]:
    reply = requests.get(f"{API}/customers", params={"name": request.args.get("name", "")},
                         timeout=30)
    return {"status": reply.status_code, "customers": reply.json().get("customers", [])}
