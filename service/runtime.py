"""Everything a running process holds: the pool, the Attestr and Airtable clients, the worker
and the pusher. `serve` and `worker` both start one."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from .airtable import Airtable
from .attestr import AttestrClient
from .config import Settings
from .database import create_pool
from .migrations import migrate
from .pusher import Pusher
from .sync import Syncer
from .worker import Worker

log = structlog.get_logger(__name__)


class Runtime:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.attestr = AttestrClient(
            settings.attestr_api_url,
            settings.attestr_api_key,
            max_contacts=settings.attestr_max_contacts,
            timeout_s=settings.attestr_timeout_s,
        )
        self.airtable = Airtable(settings, pool)
        self.pusher = Pusher(pool, self.airtable, settings)
        self.syncer = Syncer(pool, settings, self.attestr, self.airtable, on_stored=self.pusher.wake)
        self.worker = Worker(pool, settings, self.syncer)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, settings: Settings, database_url: str) -> Runtime:
        pool = await create_pool(database_url, max_size=max(10, settings.worker_concurrency + 8))
        async with pool.acquire() as conn:
            await migrate(conn)
        return cls(settings, pool)

    def start_background(self) -> None:
        """Run the worker and the pusher until `close`."""
        self._tasks = [
            asyncio.create_task(self.worker.run(self._stop), name="worker"),
            asyncio.create_task(self.pusher.run(self._stop), name="pusher"),
        ]

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        self.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.attestr.aclose()
        await self.pool.close()
