"""Dramatiq workers: 1 vs 2 worker processes, and what a job pays for the broker.

    python bench/workers.py [--rounds 3] [--jobs 12] [--burn 0.2] [--overhead-jobs 20]
                            [--idle-jobs 10] [--idle-pause 1.5] [--store URL]
                            [--broker URL] [--amqp URL]

Real ``audioflow worker`` processes (``python -m audioflow.cli worker``, each group in a
session of its own, terminated as a group at the end) run the worker tests' transcriber
(``tests/workers/worker_transcriber.py``) on tone-burst media
(``tests/pipeline/burst_media.py``), with ``--threads 1 --concurrency 1 --vad energy
--lease-seconds 30`` (one transcriber call at a time per job, as a model would).

1. Throughput: the same batch of ``--jobs`` jobs (4 windows each, ``--burn`` s of
   GIL-holding CPU per window), submitted from this process with
   ``DramatiqQueue.submit``, through ``--processes 1`` and ``--processes 2`` worker
   groups, alternately. Every group is started afresh, waited for (each process logs
   "ready for action") and warmed up with two short jobs per process; the clock runs
   from the first submit to the last completion a ``store.watch`` here sees. Prints
   the medians and their ratio (target >= 1.7x on 2 cores).
2. Overhead: one short job at a time (``AF_TEST_BURN=0``) through submit + worker +
   watch, alternating with an in-process ``Pipeline.run`` of the same file, with the
   pipeline a worker builds (same transcriber, store and settings) in this process:
   the baseline. Per job: submit -> ``started_at`` (the worker's claim), the run inside
   the worker (``started_at`` -> ``finished_at``), and ``finished_at`` -> seen by the
   watch here; all wall clocks of this one machine. Once back to back, once with
   ``--idle-pause`` seconds before each submit (an idle worker), for the Redis broker
   and for RabbitMQ (``--amqp ''`` to skip it). Target: overhead < 50 ms a job.

Keys live under a prefix of this run (store, call log) and the Dramatiq queue is this
run's own; both are deleted afterwards (``SCAN`` + ``DEL``, RabbitMQ queues deleted).
The workers inherit this process's environment, so Dramatiq's own settings apply to
them; ``audioflow worker`` defaults ``dramatiq_worker_timeout`` to 100 ms (an idle
worker polls the Redis broker that often; Dramatiq's own default is 1 s) and
``dramatiq_queue_prefetch`` to its thread count.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import anyio
import msgspec
import pika
import redis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pipeline"))
# worker_transcriber: the baseline pipeline here imports it, as the workers do
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workers"))
from burst_media import bursts, write_bursts

from audioflow import Job, JobStatus, Pipeline, RedisJobStore
from audioflow._config import WorkerConfig
from audioflow.dramatiq import DramatiqQueue
from audioflow.records import FINISHED_STATUSES

ROOT = Path(__file__).resolve().parents[1]
READY = "Worker process is ready for action."
BOOT_TIMEOUT = 120.0
JOB_TIMEOUT = 120.0


def media(folder: Path) -> tuple[Path, Path]:
    """A job of 8 bursts (4 windows of the test transcriber) and a 1-window one."""
    job = write_bursts(folder / "job.flac", bursts(300, 8), 1.0 + 2.3 * 8 + 1.0)
    short = write_bursts(folder / "short.flac", bursts(700, 1), 3.4)
    return job, short


class WorkerGroup:
    """One ``audioflow worker`` command: its processes, in a session of their own."""

    def __init__(
        self, config: WorkerConfig, processes: int, env: dict[str, str], log: Path
    ) -> None:
        self.processes = processes
        self.log = log
        argv = [
            sys.executable, "-m", "audioflow.cli", "worker",
            "--store", config.store, "--prefix", config.prefix,
            "--broker", config.broker, "--queue", config.queue,
            "--processes", str(processes), "--threads", "1",
            "--transcriber", config.transcriber, "--vad", str(config.vad),
            "--concurrency", str(config.concurrency),
            "--lease-seconds", str(config.lease_seconds),
        ]  # fmt: skip
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its process group: stop() ends all of it
            )

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def ready(self) -> None:
        """Wait until every process of the group logged that it is ready."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.log.read_text(errors="replace").count(READY) < self.processes:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker command exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {BOOT_TIMEOUT:g} s:\n{self.tail()}")
            await anyio.sleep(0.05)

    def stop(self) -> None:
        """Stop the group: SIGTERM to its leader, then SIGKILL to whatever is left.

        Only the leader gets the SIGTERM: Dramatiq's main process passes it on to each
        worker process, and a worker that gets a second one (as from a SIGTERM to the
        whole group) takes Dramatiq's "kill" path, which can hang instead of exiting.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                print(f"worker group {self.proc.pid} ignored SIGTERM; killing it")
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session this command leads
        except ProcessLookupError:
            pass  # nothing of it is left
        self.proc.wait()


@dataclass
class Bench:
    """What every measurement shares: the store, the client queue, the worker settings."""

    store: RedisJobStore
    queue: DramatiqQueue
    config: WorkerConfig
    env: dict[str, str]
    logs: Path

    def workers(self, processes: int, burn: float, *, call_log: bool) -> WorkerGroup:
        env = {**self.env, "AF_TEST_BURN": repr(burn)}
        if not call_log:
            env.pop("AF_TEST_LOG_KEY", None)
        log = self.logs / f"worker-{uuid.uuid4().hex[:6]}.log"
        return WorkerGroup(self.config, processes, env, log)


async def seen_finished(store: RedisJobStore, job_id: str) -> float:
    """``time.time()`` when a watch of the job sees it completed."""
    with anyio.fail_after(JOB_TIMEOUT):
        async for event in store.watch(job_id):
            if event.status in FINISHED_STATUSES:
                seen = time.time()
                if event.status is not JobStatus.COMPLETED:
                    job = await store.get(job_id)
                    raise RuntimeError(f"job {job_id} ended {event.status}: {job and job.error}")
                return seen
    raise RuntimeError(f"job {job_id} vanished from the store")


async def run_batch(bench: Bench, path: Path, jobs: int) -> tuple[float, list[Job]]:
    """Submit ``jobs`` jobs of ``path``; seconds from the first submit to the last
    completion seen, and the finished jobs."""
    seen: dict[str, float] = {}

    async def follow(job_id: str) -> None:
        seen[job_id] = await seen_finished(bench.store, job_id)

    begin = time.time()
    async with anyio.create_task_group() as tg:
        for _ in range(jobs):
            job = await bench.queue.submit(bench.store, path)
            tg.start_soon(follow, job.id)
    done = [await bench.store.get(job_id) for job_id in seen]
    return max(seen.values()) - begin, [job for job in done if job is not None]


def started(job: Job) -> float:
    assert job.started_at is not None
    return job.started_at.timestamp()


def finished(job: Job) -> float:
    assert job.finished_at is not None
    return job.finished_at.timestamp()


async def windows_by_pid(url: str, key: str) -> Counter[str]:
    """Windows each worker process transcribed (the test transcriber's call log)."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        entries = await client.lrange(key, 0, -1)
        await client.delete(key)
    finally:
        await client.aclose()
    return Counter(str(entry).rsplit(":", 1)[1] for entry in entries)


async def throughput(bench: Bench, path: Path, short: Path, args: argparse.Namespace) -> None:
    print(
        f"== 1. throughput: {args.jobs} jobs of 4 windows x {args.burn:g} s CPU, "
        f"--threads 1, {os.cpu_count()} cores =="
    )
    print(
        f"{'run':<16}{'wall s':>8}{'jobs/s':>8}{'1st start ms':>14}"
        f"{'busy s':>8}{'job s (median)':>16}  windows per process"
    )
    walls: dict[int, list[float]] = {1: [], 2: []}
    log_key = bench.env["AF_TEST_LOG_KEY"]
    for round_ in range(1, args.rounds + 1):
        for processes in (1, 2):  # alternating, so a noisy neighbour hits both alike
            with bench.workers(processes, args.burn, call_log=True) as group:
                await group.ready()
                async with anyio.create_task_group() as tg:  # two warm-up jobs a process
                    for _ in range(2 * processes):
                        job = await bench.queue.submit(bench.store, short)
                        tg.start_soon(seen_finished, bench.store, job.id)
                await windows_by_pid(args.store, log_key)  # forget the warm-up's calls
                wall, jobs = await run_batch(bench, path, args.jobs)
                per_pid = await windows_by_pid(args.store, log_key)
            walls[processes].append(wall)
            first = min(started(j) for j in jobs) - min(j.created_at.timestamp() for j in jobs)
            busy = max(finished(j) for j in jobs) - min(started(j) for j in jobs)
            job_s = statistics.median(finished(j) - started(j) for j in jobs)
            spread = "/".join(str(n) for n in sorted(per_pid.values(), reverse=True))
            label = f"{processes} process{'es' if processes > 1 else ''} #{round_}"
            print(
                f"{label:<16}{wall:>8.2f}{args.jobs / wall:>8.2f}{first * 1000:>14.0f}"
                f"{busy:>8.2f}{job_s:>16.2f}  {spread}"
            )
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    pairs = sorted(a / b for a, b in zip(walls[1], walls[2], strict=True))
    print(
        f"throughput 2 processes / 1 process (median walls {one:.2f} s / {two:.2f} s): "
        f"{one / two:.2f}x (target >= 1.7x); per round " + ", ".join(f"{r:.2f}x" for r in pairs)
    )


@dataclass
class Sample:
    submit: float  # the submit() call, s
    pickup: float  # submit() called -> started_at
    run: float  # started_at -> finished_at, in the worker
    seen: float  # finished_at -> the watch here yields it
    end_to_end: float  # submit() called -> the watch here yields it
    local: float  # Pipeline.run in this process, s


async def overhead_series(
    bench: Bench, baseline: Pipeline, path: Path, jobs: int, pause: float
) -> list[Sample]:
    samples = []
    for _ in range(jobs):
        begin = time.perf_counter()
        await baseline.run(path)
        local = time.perf_counter() - begin
        await anyio.sleep(pause)
        called = time.time()
        job = await bench.queue.submit(bench.store, path)
        submitted = time.time()
        seen = await seen_finished(bench.store, job.id)
        done = await bench.store.get(job.id)
        assert done is not None
        samples.append(
            Sample(
                submit=submitted - called,
                pickup=started(done) - called,
                run=finished(done) - started(done),
                seen=seen - finished(done),
                end_to_end=seen - called,
                local=local,
            )
        )
    return samples


def report(label: str, samples: Sequence[Sample]) -> None:
    def ms(name: str) -> float:
        return statistics.median(float(getattr(s, name)) for s in samples) * 1000

    extra = statistics.median(s.end_to_end - s.local for s in samples) * 1000
    worst = max(s.end_to_end - s.local for s in samples) * 1000
    print(
        f"{label:<24}{ms('submit'):>8.1f}{ms('pickup'):>9.1f}{ms('run'):>8.1f}"
        f"{ms('seen'):>7.1f}{ms('end_to_end'):>9.1f}{ms('local'):>8.1f}"
        f"{extra:>10.1f}{worst:>8.0f}{ms('end_to_end') / ms('local'):>8.2f}x"
    )


async def overhead(bench: Bench, path: Path, args: argparse.Namespace) -> None:
    print(
        f"\n== 2. per-job overhead: {args.overhead_jobs} jobs back to back, "
        f"{args.idle_jobs} after {args.idle_pause:g} s idle; 1-window jobs, no burn =="
    )
    print(
        "ms, medians: submit = the submit() call; pickup = submit() -> started_at; "
        "run = started_at -> finished_at (worker);\nseen = finished_at -> watch here; "
        "e2e = submit() -> watch here; local = Pipeline.run here; overhead = e2e - local"
    )
    print(
        f"{'series':<24}{'submit':>8}{'pickup':>9}{'run':>8}{'seen':>7}{'e2e':>9}{'local':>8}"
        f"{'overhead':>10}{'worst':>8}{'ratio':>9}"
    )
    brokers = [("redis", args.broker)] + ([("rabbitmq", args.amqp)] if args.amqp else [])
    baseline = bench.config.pipeline(bench.store)  # the pipeline a worker process builds
    overheads: dict[str, float] = {}
    for name, url in brokers:
        config = msgspec.structs.replace(bench.config, broker=url)
        queue = DramatiqQueue(url, queue_name=config.queue)
        run = Bench(bench.store, queue, config, bench.env, bench.logs)
        try:
            with run.workers(1, 0.0, call_log=False) as group:
                await group.ready()
                await overhead_series(run, baseline, path, 3, 0.0)  # warm-up, both sides
                for label, jobs, pause in (
                    (f"{name}, back to back", args.overhead_jobs, 0.0),
                    (f"{name}, idle worker", args.idle_jobs, args.idle_pause),
                ):
                    if jobs < 1:
                        continue
                    samples = await overhead_series(run, baseline, path, jobs, pause)
                    report(label, samples)
                    overheads[label] = statistics.median(s.end_to_end - s.local for s in samples)
        finally:
            queue.close()
    await baseline.aclose()
    for label, extra in overheads.items():
        verdict = "meets" if extra * 1000 < 50 else "misses"
        print(f"overhead a job, {label}: {extra * 1000:.0f} ms ({verdict} the < 50 ms target)")


def unreachable(amqp: str) -> str | None:
    """Why RabbitMQ at ``amqp`` cannot be used, or None."""
    parameters = pika.URLParameters(amqp)
    parameters.connection_attempts, parameters.socket_timeout = 1, 3.0
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.AMQPError as exc:
        return repr(exc)
    return None


def cleanup(args: argparse.Namespace, prefix: str, queue_name: str) -> None:
    """Delete this run's keys (store, call log, Dramatiq's) and RabbitMQ queues."""
    if args.broker.startswith(("redis://", "rediss://")):
        broker = redis.Redis.from_url(args.broker)
        for pattern in (f"dramatiq:{queue_name}*", f"dramatiq:__acks__.*.{queue_name}*"):
            for key in list(broker.scan_iter(match=pattern, count=1000)):
                broker.delete(key)
        broker.close()
    client = redis.Redis.from_url(args.store)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()
    if args.amqp:
        connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
        channel = connection.channel()
        for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):
            channel.queue_delete(name)
        connection.close()


async def bench_main(args: argparse.Namespace, prefix: str, queue_name: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "tests" / "workers"), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.update(AF_TEST_PAUSE="0", AF_TEST_LOG_KEY=f"{prefix}calls", AF_TEST_LOG_URL=args.store)
    # This process's own transcriber (the baseline's) neither burns nor logs.
    for name in ("AF_TEST_BURN", "AF_TEST_PAUSE", "AF_TEST_LOG_KEY"):
        os.environ.pop(name, None)
    config = WorkerConfig(
        store=args.store,
        broker=args.broker,
        prefix=prefix,
        queue=queue_name,
        transcriber="worker_transcriber:make",
        vad="energy",
        concurrency=1,
        lease_seconds=30.0,
        sweep_interval=15.0,
    )
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        path, short = media(Path(tmp))
        queue = DramatiqQueue(args.broker, queue_name=queue_name)
        async with RedisJobStore(args.store, prefix=prefix) as store:
            bench = Bench(store, queue, config, env, Path(tmp))
            try:
                if args.rounds > 0:
                    await throughput(bench, path, short, args)
                await overhead(bench, short, args)
            finally:
                queue.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1/2-process rounds")
    parser.add_argument("--jobs", type=int, default=12, help="jobs in the throughput batch")
    parser.add_argument("--burn", type=float, default=0.2, help="CPU s per window (throughput)")
    parser.add_argument("--overhead-jobs", type=int, default=20, help="back-to-back jobs")
    parser.add_argument("--idle-jobs", type=int, default=10, help="jobs after an idle pause")
    parser.add_argument("--idle-pause", type=float, default=1.5, help="s idle before each")
    parser.add_argument("--store", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    if args.amqp and (problem := unreachable(args.amqp)):
        print(f"RabbitMQ at {args.amqp} is unreachable ({problem}): its series are skipped")
        args.amqp = ""
    run = uuid.uuid4().hex
    prefix, queue_name = f"bench-workers-{run[:8]}:", f"benchq_{run}"
    try:
        anyio.run(bench_main, args, prefix, queue_name)
    finally:
        cleanup(args, prefix, queue_name)


if __name__ == "__main__":
    main()
