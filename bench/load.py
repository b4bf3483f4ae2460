"""A small HTTP/1.1 load generator on raw asyncio sockets (keep-alive, N connections in flight),
fast enough not to be the bottleneck of a Python web service on the same machine."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


def request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def hammer(port: int, make: Callable[[int], bytes], total: int, concurrency: int) -> Result:
    """`total` requests, `concurrency` at a time, as fast as the server answers."""
    result, counter = Result(), iter(range(total))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in counter:
            started = time.perf_counter()
            status = await _exchange(reader, writer, make(n))
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


async def steady(
    port: int, make: Callable[[int], bytes], rate: float, seconds: float, offset: int = 0
) -> Result:
    """Requests at a steady `rate` per second (each on a free connection) for `seconds`."""
    result, free = Result(), asyncio.Queue()
    for _ in range(32):
        free.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    async def one(n: int) -> None:
        reader, writer = await free.get()
        started = time.perf_counter()
        status = await _exchange(reader, writer, make(offset + n))
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.statuses[status] += 1
        free.put_nowait((reader, writer))

    tasks, begin = [], time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    result.elapsed_s = time.perf_counter() - begin
    while not free.empty():
        free.get_nowait()[1].close()
    return result


async def poll(
    port: int, make: Callable[[int], bytes], seconds: float, clients: int, offset: int = 0
) -> Counter[int]:
    """`clients` connections each sending requests back to back for `seconds`; the statuses."""
    sent, statuses = iter(range(offset, offset + 10**9)), Counter[int]()

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            statuses[await _exchange(reader, writer, make(next(sent)))] += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses
