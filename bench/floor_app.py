"""The floor for webhook intake: a bare Starlette app on uvicorn that stores each request's JSON
with one asyncpg INSERT and answers 202. Same server settings as `contact-sync serve`."""

from __future__ import annotations

import argparse
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(dsn: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        app.state.pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        await app.state.pool.execute(
            "CREATE TABLE IF NOT EXISTS floor_jobs (id bigserial PRIMARY KEY, body jsonb)"
        )
        yield
        await app.state.pool.close()

    async def store(request: Request) -> JSONResponse:
        job_id = await request.app.state.pool.fetchval(
            "INSERT INTO floor_jobs (body) VALUES ($1) RETURNING id", (await request.body()).decode()
        )
        return JSONResponse({"job_id": str(job_id)}, status_code=202)

    return Starlette(routes=[Route("/webhooks/airtable", store, methods=["POST"])], lifespan=lifespan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.dsn), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
