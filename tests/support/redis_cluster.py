"""A private three-node Redis Cluster on loopback, for the tests that need one.

``redis_cluster()`` starts three ``redis-server`` processes in cluster mode on free
ports, joins them with ``redis-cli --cluster create`` (no replicas: one primary per
third of the slots) and waits, polling with a deadline, until every node reports
``cluster_state:ok``. On exit, normal or not, the processes are killed and their
directory removed. It never touches the shared server on 127.0.0.1:6379.

``Cluster.kill`` and ``Cluster.restart`` take one node down (``SIGKILL``) and bring it
back on the same port with its cluster config (but, like any node here, no data).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
import redis.asyncio as aioredis

NODES = 3
_START_TIMEOUT = 20.0  # seconds, for the whole cluster to come up
_POLL = 0.02  # seconds between polls while waiting for a state
_BUS_OFFSET = 10_000  # Redis Cluster's bus listens on port + 10000


class Cluster:
    """A running cluster: its nodes' ports, a URL of one of them, and its processes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports: tuple[int, ...] = ()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """``redis://`` URL of the first node (the others are discovered)."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def node(self, port: int) -> aioredis.Redis:
        """An asyncio client of one node alone (``async with`` it to close it)."""
        return aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def kill(self, port: int) -> None:
        """``kill -9`` one node and reap it."""
        proc = self._procs[port]
        proc.kill()
        proc.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Start a killed node again and wait until every node reports ``cluster_state:ok``."""
        self._spawn(port)
        deadline = time.monotonic() + _START_TIMEOUT
        self._wait_answers(port, deadline)
        self._wait_ok(deadline)

    def _spawn(self, port: int) -> None:
        options = {
            "cluster-enabled": "yes",
            "cluster-config-file": str(self.workdir / f"nodes-{port}.conf"),
            "port": str(port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": str(self.workdir),
        }
        argv = ["redis-server", *(arg for o, v in options.items() for arg in (f"--{o}", v))]
        with (self.workdir / f"redis-{port}.log").open("ab") as log:  # the child has its fd
            self._procs[port] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _wait_answers(self, port: int, deadline: float) -> None:
        proc = self._procs[port]

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {port} exited at start")
            return _answers(port)

        _wait_until(f"node {port} answers PING", up, deadline)

    def _wait_ok(self, deadline: float) -> None:
        for port in self.ports:
            _wait_until(
                f"node {port} reports cluster_state:ok", lambda p=port: _state_ok(p), deadline
            )

    def _start(self) -> None:
        self.ports = tuple(_free_ports(NODES))
        for port in self.ports:
            self._spawn(port)
        deadline = time.monotonic() + _START_TIMEOUT
        for port in self.ports:
            self._wait_answers(port, deadline)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        join = ["--cluster-replicas", "0", "--cluster-yes"]
        create = subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, *join],
            capture_output=True,
            timeout=_START_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed:\n{create.stdout.decode()}"
                f"\n{create.stderr.decode()}"
            )
        self._wait_ok(deadline)

    def _stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()  # a throwaway cluster: nothing to save, no reason to wait
        for proc in self._procs.values():
            proc.wait(timeout=10)


def missing_binaries() -> list[str]:
    """Of ``redis-server`` and ``redis-cli``, the ones not on PATH."""
    return [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports free on loopback whose cluster-bus port (+10000) is free too.

    Ports from the OS's ephemeral range could put the bus above 65535, so they are
    drawn from 20000-39999 instead. A port could still be taken between this check and
    the server's bind; the server then exits and ``redis_cluster`` reports it.
    """
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randrange(20_000, 40_000)
        if port in chosen or port + _BUS_OFFSET in chosen:
            continue
        if _port_is_free(port) and _port_is_free(port + _BUS_OFFSET):
            chosen.append(port)
    return chosen


def _wait_until(what: str, check: Callable[[], bool], deadline: float) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis Cluster: timed out waiting until {what}")
        time.sleep(_POLL)  # a poll interval, not synchronisation: ``check`` decides


def _answers(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=None)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def _state_ok(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=None)
    try:
        info = client.cluster("INFO")  # parsed by redis-py into a dict
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()
    return bool(info.get("cluster_state") == "ok")


@contextlib.contextmanager
def redis_cluster() -> Iterator[Cluster]:
    """Start a three-node cluster; kill it and remove its files on exit.

    Raises:
        RuntimeError: a node did not start, or the cluster did not reach
            ``cluster_state:ok`` in time (the message carries the nodes' logs).
    """
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="audioflow-cluster-")))
    try:
        try:
            cluster._start()
        except RuntimeError as exc:
            logs = "\n".join(
                f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
                for path in sorted(cluster.workdir.glob("*.log"))
            )
            raise RuntimeError(f"{exc}\n{logs}") from exc
        yield cluster
    finally:
        try:
            cluster._stop()
        finally:
            shutil.rmtree(cluster.workdir, ignore_errors=True)
