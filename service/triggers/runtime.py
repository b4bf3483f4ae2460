"""Everything a running process holds: the pool, the Attestr and Airtable clients, the worker
and the pusher. `serve` and `worker` both start one."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import structlog

from service.airtable import client as airtable_client
from service.airtable import ratelimit
from service.airtable.client import Airtable
from service.attestr.client import AttestrClient
from service.config import Settings
from service.database import create_pool
from service.engine import retention
from service.engine.alerts import AlertSender
from service.engine.listener import Listener, Notifier
from service.engine.pusher import Pusher
from service.engine.sync import Syncer
from service.engine.worker import Worker
from service.migrations import migrate
from service.triggers import reconcile
from service.triggers.payloads import PayloadReader

log = structlog.get_logger(__name__)


class Runtime:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, database_url: str | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.attestr = AttestrClient.from_settings(settings)
        self.airtable = Airtable(settings, pool)
        self.pusher = Pusher(pool, self.airtable, settings, lease_s=settings.job_lease_s)
        # Names this process in its NOTIFYs: its own listener skips them (it wakes its tasks itself).
        token = secrets.token_hex(8)
        self.syncer = Syncer(
            pool, settings, self.attestr, self.airtable, hand_off=self.pusher.prepare, token=token
        )
        self.worker = Worker(pool, settings, self.syncer)
        self.reader = PayloadReader(pool, self.airtable, on_queued=self.worker.wake)
        self.listener = (
            Listener(
                database_url,
                {"jobs": self.worker.wake, "push": self.pusher.wake, "payloads": self.reader.wake},
                own=token,
            )
            if database_url
            else None
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running_worker = False
        self.notifier = Notifier(pool, token)

    @classmethod
    async def open(cls, settings: Settings, database_url: str) -> Runtime:
        # A job may hold two connections (its CIN's lock and its queries); the pusher and the
        # webhooks need their own.
        pool = await create_pool(database_url, max_size=2 * settings.worker_concurrency + 10)
        async with pool.acquire() as conn:
            await migrate(conn)
        return cls(settings, pool, database_url)

    def start_notifier(self) -> None:
        """Tell other processes about the jobs this one stores (see `Notifier`)."""
        self._tasks.append(asyncio.create_task(self.notifier.run(self._stop), name="notifier"))

    def jobs_stored(self) -> None:
        """A job was stored here: wake this process's worker, and the others'."""
        if self._running_worker:
            self.worker.wake()
        self.notifier.nudge()

    def start_background(self) -> None:
        """Run the worker and the pusher until `close`."""
        self._running_worker = True
        self.notifier.head_start_s = self.notifier.interval_s  # this worker first (`Notifier`)
        self._tasks += [
            asyncio.create_task(retention.run(self.pool, self.settings, self._stop), name="retention"),
            asyncio.create_task(self._after_pyairtable(), name="loading"),
            # Every process sends alerts; the database decides which one sends each.
            asyncio.create_task(AlertSender(self.pool, self.settings).run(self._stop), name="alerts"),
        ]
        if self.listener:
            self._tasks.append(asyncio.create_task(self.listener.run(self._stop), name="listener"))

    async def _after_pyairtable(self) -> None:
        """The worker (a job may read its company's CIN), the pusher, the native webhook's payload
        reader and the reconciliation sweep, once pyairtable has loaded off the event loop: the
        service answers meanwhile. Each is a task of its own that `close` waits for."""
        await airtable_client.load()
        work = [
            asyncio.create_task(self.worker.run(self._stop), name="worker"),
            asyncio.create_task(self.pusher.run(self._stop), name="pusher"),
            asyncio.create_task(self.reader.run(self._stop), name="payload-reader"),
            asyncio.create_task(
                reconcile.run(self.pool, self.airtable, self.settings, self._stop), name="reconcile"
            ),
        ]
        self._tasks += work
        await asyncio.gather(*work)

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        self.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.attestr.aclose()
        await ratelimit.reports_settled()
        await self.pool.close()
