"""A small closed-loop HTTP load generator, run as its own process by the benchmark.

Prints one JSON line: requests/s, p50 and p99 latency in ms, and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx


async def worker(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    until: float,
    out: list[float],
    errors: list[int],
) -> None:
    headers = {"content-type": "application/json"}
    while time.perf_counter() < until:
        started = time.perf_counter()
        response = await client.post(url, content=body, headers=headers)
        if response.status_code != 200:
            errors.append(response.status_code)
        out.append(time.perf_counter() - started)


async def run(url: str, body: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await client.post(
            url, content=body, headers={"content-type": "application/json"}
        )  # warm-up
        latencies: list[float] = []
        errors: list[int] = []
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(worker(client, url, body, until, latencies, errors) for _ in range(concurrency))
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("body")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    print(
        json.dumps(asyncio.run(run(args.url, args.body.encode(), args.concurrency, args.seconds)))
    )


if __name__ == "__main__":
    main()
