"""Wake-ups between tasks and processes: a nudge to the pusher wakes one idle sender (the rows of
one stored job are one request), a nudge with none idle is kept for the next, and a process's
listener skips the notifications it sent itself (it woke its own tasks already)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from service.engine.listener import Listener, notified_as
from service.wakeup import WakeOne


async def _settled() -> None:
    """Let every task that can run, run."""
    for _ in range(10):
        await asyncio.sleep(0)


@given(waiters=st.integers(1, 6), nudges=st.integers(0, 8))
def test_each_nudge_wakes_one_idle_sender_the_rest_are_kept(waiters: int, nudges: int) -> None:
    async def run() -> None:
        wakeup, stop = WakeOne(), asyncio.Event()
        woken: list[int] = []

        async def sender(i: int) -> None:
            await wakeup.wait(stop, 3600)
            woken.append(i)

        tasks = [asyncio.create_task(sender(i)) for i in range(waiters)]
        await _settled()
        for _ in range(nudges):
            wakeup.set()
        await _settled()
        assert woken == list(range(min(nudges, waiters)))  # the longest idle first
        if nudges > waiters:  # kept: the next to wait returns at once
            await asyncio.wait_for(wakeup.wait(stop, 3600), 5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert sorted(woken) == list(range(waiters))

    asyncio.run(run())


def test_a_sender_that_stopped_waiting_is_not_given_a_nudge() -> None:
    async def run() -> None:
        wakeup, stop = WakeOne(), asyncio.Event()
        await wakeup.wait(stop, 0)  # timed out: no longer idle
        late = asyncio.create_task(wakeup.wait(stop, 3600))
        await _settled()
        wakeup.set()
        await asyncio.wait_for(late, 5)  # the nudge went to the one still waiting

    asyncio.run(run())


def test_a_process_skips_its_own_notifications_and_wakes_for_the_others() -> None:
    woken: list[str] = []
    listener = Listener(
        "postgresql://unused",
        {"jobs": lambda: woken.append("jobs"), "push": lambda: woken.append("push")},
        own="a1",
    )
    for payload in [notified_as("push", "a1"), notified_as("jobs", "a1")]:
        listener._notified(None, 0, "contact_sync", payload)
    assert woken == []
    for payload in [notified_as("push", "b2"), "jobs", "push", "payloads", notified_as("other", "b2")]:
        listener._notified(None, 0, "contact_sync", payload)
    assert woken == ["push", "jobs", "push"]
