"""Job store throughput: RedisJobStore vs raw redis-py vs RQ, on one Redis, in one run.

    python bench/store.py [--ops 4000] [--concurrency 50] [--url redis://127.0.0.1:6379/0]

For each operation it prints ops/s of

* ``RedisJobStore`` (one Lua script per write; typed ``Job`` out of ``get``),
* raw redis-py issuing the equivalent commands from the same 50 asyncio tasks
  (create: MULTI HSET+PEXPIRE+XADD+PEXPIRE+ZADD; update: MULTI HSET 3 fields+HINCRBY+
  XADD+PEXPIRE x2; transition: WATCH/HGET/MULTI compare-and-set; get: HGETALL, no
  decoding),
* RQ (``Job.create(...).save()``, three attributes then ``job.save()``,
  ``job.set_status``, ``Job.fetch``) from 50 threads, RQ being synchronous,

and the ratios. Keys live under a prefix of their own and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import msgspec
import redis
import redis.asyncio as aioredis
import rq
from redis.exceptions import WatchError

from audioflow import Job, JobOptions, JobStatus, Progress, RedisJobStore
from audioflow.store.memory import order_key

enc = msgspec.json.Encoder()


async def run_async(n: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> float:
    """ops/s of ``op(0..n-1)`` spread over ``concurrency`` tasks."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def run_threads(n: int, concurrency: int, op: Callable[[int], object]) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(op, range(n)))
    return n / (time.perf_counter() - start)


def job_fields(job: Job) -> dict[str, bytes]:
    return {
        name: enc.encode(getattr(job, name))
        for name in Job.__struct_fields__
        if name not in ("id", "version")
    }


async def bench_store(url: str, n: int, c: int, prefix: str) -> dict[str, float]:
    client = aioredis.Redis.from_url(url, max_connections=c + 10)
    store = RedisJobStore(client, prefix=prefix)
    ids = [f"s{i}" for i in range(n)]
    out = {
        "create": await run_async(n, c, lambda i: store.create(Job(id=ids[i], source="a.mp3"))),
        "update": await run_async(
            n,
            c,
            lambda i: store.update(
                ids[i],
                progress=Progress(stage="decode", fraction=0.5),
                meta={"k": "v"},
                options=JobOptions(language="en"),
            ),
        ),
        "transition": await run_async(
            n, c, lambda i: store.transition(ids[i], JobStatus.RUNNING, expect={JobStatus.QUEUED})
        ),
        "get": await run_async(n, c, lambda i: store.get(ids[i])),
    }
    await client.aclose()
    return out


async def bench_raw(url: str, n: int, c: int, prefix: str) -> dict[str, float]:
    client = aioredis.Redis.from_url(url, max_connections=c + 10)
    ttl = 24 * 3600 * 1000
    ids = [f"r{i}" for i in range(n)]

    def keys(job_id: str) -> tuple[str, str]:
        return f"{prefix}{{{job_id}}}:job", f"{prefix}{{{job_id}}}:events"

    async def create(i: int) -> None:
        job = Job(id=ids[i], source="a.mp3")
        fields = job_fields(job)
        h, e = keys(job.id)
        async with client.pipeline(transaction=True) as p:
            p.hset(h, mapping={"version": 1, **fields})
            p.pexpire(h, ttl)
            p.xadd(e, {"kind": "created", **fields}, maxlen=1000, approximate=True)
            p.pexpire(e, ttl)
            p.zadd(f"{prefix}index:all", {order_key(job): 0})
            await p.execute()

    async def update(i: int) -> None:
        fields = {
            "progress": enc.encode(Progress(stage="decode", fraction=0.5)),
            "meta": enc.encode({"k": "v"}),
            "options": enc.encode(JobOptions(language="en")),
        }
        h, e = keys(ids[i])
        async with client.pipeline(transaction=True) as p:
            p.hset(h, mapping=fields)
            p.hincrby(h, "version", 1)
            p.xadd(e, {"kind": "updated", **fields}, maxlen=1000, approximate=True)
            p.pexpire(h, ttl)
            p.pexpire(e, ttl)
            await p.execute()

    async def transition(i: int) -> None:
        h, e = keys(ids[i])
        async with client.pipeline(transaction=True) as p:
            while True:
                try:
                    await p.watch(h)
                    if await p.hget(h, "status") != b'"queued"':
                        raise RuntimeError("lost")
                    p.multi()
                    p.hset(h, mapping={"status": b'"running"', "started_at": enc.encode(0)})
                    p.hincrby(h, "version", 1)
                    p.xadd(e, {"kind": "transitioned"}, maxlen=1000, approximate=True)
                    p.pexpire(h, ttl)
                    p.pexpire(e, ttl)
                    await p.execute()
                    return
                except WatchError:
                    continue

    async def get(i: int) -> None:
        await client.hgetall(keys(ids[i])[0])

    out = {
        "create": await run_async(n, c, create),
        "update": await run_async(n, c, update),
        "transition": await run_async(n, c, transition),
        "get": await run_async(n, c, get),
    }
    await client.aclose()
    return out


def bench_rq(url: str, n: int, c: int, prefix: str) -> dict[str, float]:
    conn = redis.Redis.from_url(url, max_connections=c + 10)
    ids = [f"{prefix}q{i}" for i in range(n)]

    def create(i: int) -> None:
        rq.job.Job.create("builtins.len", args=("x",), id=ids[i], connection=conn).save()

    def update(i: int) -> None:
        job = rq.job.Job.fetch(ids[i], connection=conn)
        job.meta = {"stage": "decode", "fraction": 0.5}
        job.description = "decode 50%"
        job.timeout = 600
        job.save()

    def transition(i: int) -> None:
        rq.job.Job(ids[i], connection=conn).set_status(rq.job.JobStatus.STARTED)

    def get(i: int) -> None:
        rq.job.Job.fetch(ids[i], connection=conn)

    out = {
        "create": run_threads(n, c, create),
        "update": run_threads(n, c, update),
        "transition": run_threads(n, c, transition),
        "get": run_threads(n, c, get),
    }
    for key in conn.scan_iter(match=f"rq:job:{prefix}*", count=1000):
        conn.delete(key)
    conn.close()
    return out


def cleanup(url: str, prefix: str) -> None:
    conn = redis.Redis.from_url(url)
    keys = list(conn.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        conn.delete(*keys[i : i + 500])
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    prefix = f"audioflow-bench:{uuid.uuid4().hex[:8]}:"
    try:
        store = asyncio.run(bench_store(args.url, args.ops, args.concurrency, prefix + "s:"))
        raw = asyncio.run(bench_raw(args.url, args.ops, args.concurrency, prefix + "r:"))
        rqs = bench_rq(args.url, args.ops, args.concurrency, prefix.replace(":", "-"))
    finally:
        cleanup(args.url, prefix)
    print(f"store benchmark: {args.ops} ops per operation, {args.concurrency} concurrent")
    print("op".ljust(11) + "RedisJobStore".rjust(15) + "raw redis-py".rjust(14), end="")
    print("RQ".rjust(10) + "vs raw".rjust(9) + "vs RQ".rjust(8))
    for op in ("create", "update", "transition", "get"):
        print(
            f"{op:<11}{store[op]:>13.0f}/s{raw[op]:>12.0f}/s{rqs[op]:>8.0f}/s"
            f"{store[op] / raw[op]:>8.2f}x{store[op] / rqs[op]:>7.2f}x"
        )
    print("targets: update >= 0.8x raw redis-py and >= 3x RQ")


if __name__ == "__main__":
    main()
