"""Service B of the attack-flow test: a FastAPI service (under uvicorn, protected) that reads
customers from PostgreSQL with async psycopg.

`FLOW_TABLE` names the table the test made. `/customers/{id}` binds the id, as it should;
`/customers?name=` pastes the name into the statement, the injectable query the exploit
rules must see at the sink.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from tests import services

TABLE = os.environ.get("FLOW_TABLE", "flow_customers")

app = FastAPI()


async def query(statement: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(**services.POSTGRES,
                                                     autocommit=True) as connection:
        cursor = await connection.execute(statement, params)
        return [{"id": row[0], "name": row[1]} for row in await cursor.fetchall()]


@app.get("/health", response_class=PlainTextResponse)
def health() -> str:
    return "ok"


@app.get("/customers/{customer_id}")
async def customer(customer_id: int) -> dict[str, Any]:
    rows = await query(f"SELECT id, name FROM {TABLE} WHERE id = %s AND status = 'active'",
                       (customer_id,))
    return {"customers": rows}


@app.get("/customers")
async def by_name(name: str = "") -> dict[str, Any]:
    rows = await query(f"SELECT id, name FROM {TABLE} WHERE name = '{name}'")
    return {"customers": rows}
