"""A small FastAPI app for the end-to-end tests (protected by `bastion-run`)."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

import bastion

app = FastAPI()


@app.get("/health", response_class=PlainTextResponse)
def health() -> str:
    return "ok"


@app.get("/search")
def search(q: str = "") -> Response:
    return Response(json.dumps({"query": q, "results": [q.upper()]}),
                    media_type="application/json", headers={"X-App": "fastapi"})


@app.get("/item/{item_id}")
async def item(item_id: str) -> dict[str, str]:
    return {"item": item_id}


@app.post("/submit")
async def submit(request: Request) -> Response:
    body = await request.body()
    return Response(json.dumps({"length": len(body)}), media_type="application/json")


@app.get("/login-as", response_class=PlainTextResponse)
def login_as(user: str = "") -> str:
    bastion.set_user(user)
    return "welcome"


@app.get("/refuse", response_class=PlainTextResponse)
async def refuse() -> str:
    bastion.block_request()
    return "not reached"
