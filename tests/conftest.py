"""Shared fixtures: one real PostgreSQL per test session, a fresh database per test.

With DATABASE_URL set the tests use that server; otherwise they start the embedded one from
pgserver in a temporary directory. Each test gets its own database, copied from a migrated
template, and its URL (`db_url`) can be handed to child processes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from service.database import create_pool, start_embedded
from service.migrations import migrate
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.standins.server import serve_in_thread

S = TypeVar("S")
TEMPLATE = "contact_sync_template"
_counter = itertools.count()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _make_template(server_url: str) -> None:
    await _admin(server_url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    conn = await asyncpg.connect(with_database(server_url, TEMPLATE))
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server with a migrated template database."""
    url = os.environ.get("DATABASE_URL") or start_embedded(Path(tmp_path_factory.mktemp("pg")))
    asyncio.run(_make_template(url))
    yield url


@pytest.fixture
def db_url(pg_server: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"test_{os.getpid()}_{next(_counter)}"
    asyncio.run(_admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
    yield with_database(pg_server, name)
    asyncio.run(_admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=10)
    yield pool
    await pool.close()


@dataclass
class Running(Generic[S]):
    """A stand-in and the URL it answers on."""

    standin: S
    url: str


@pytest.fixture
def airtable() -> Iterator[Running[AirtableStandIn]]:
    standin = AirtableStandIn(cooldown_s=1.0)
    with serve_in_thread(standin.app()) as url:
        yield Running(standin, url)


@pytest.fixture
def attestr() -> Iterator[Running[AttestrStandIn]]:
    standin = AttestrStandIn()
    with serve_in_thread(standin.app()) as url:
        yield Running(standin, url)
