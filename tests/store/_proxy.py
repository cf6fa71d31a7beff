"""A loopback TCP proxy in front of Redis that can lose one reply, for retry tests.

Between a client and the real server it forwards bytes both ways. Armed with
:meth:`ReplyDroppingProxy.drop_next_reply`, it lets the next request that contains a
marker (``EVALSHA``: a store's script, never a connection's handshake) through to the
server, and when the server's reply arrives it drops it and closes that client
connection: the server ran the command, the client saw the connection drop and, like
redis-py, sends it again on a new connection. Optionally it then refuses every
new connection, so that every retry fails.

Everything happens in the order the bytes flow, on the test's event loop: no sleeps.
The proxy sets its "doomed" mark before it forwards the request, so the reply that
follows is that request's (a redis-py connection waits for its replies before it sends
more).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
from anyio import CancelScope
from anyio.abc import ByteStream, SocketAttribute, SocketStream

__all__ = ["ReplyDroppingProxy", "open_proxy"]

_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


@dataclass
class _Link:
    doomed: bool = False  # the next reply on this connection is dropped


class ReplyDroppingProxy:
    """See the module docstring; made by :func:`open_proxy`.

    Attributes:
        port: where clients connect (on 127.0.0.1).
        connections: client connections accepted so far (refused ones included).
        refused: client connections closed at once because reconnects are refused.
        requests: every request (as received) that held the armed marker, from the
            arming on: the request whose reply was dropped, then its re-sends.
        dropped: the reply bytes the proxy dropped (``b""`` until it has).
        lost: set once a reply was dropped and its client connection closed.
    """

    def __init__(self, upstream_host: str, upstream_port: int, path: str = "/0") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._path = path
        self.port = 0
        self.connections = 0
        self.refused = 0
        self.requests: list[bytes] = []
        self.dropped = b""
        self.lost = anyio.Event()
        self._marker: bytes | None = None  # what the request to doom contains
        self._recording: bytes | None = None  # what ``requests`` records
        self._refuse_after = False
        self._refusing = False
        self._before_close: Callable[[], Awaitable[None]] | None = None

    @property
    def url(self) -> str:
        """A ``redis://`` URL (the upstream URL's database) that connects through this proxy."""
        return f"redis://127.0.0.1:{self.port}{self._path}"

    def drop_next_reply(
        self,
        marker: bytes = b"EVALSHA",
        *,
        refuse_reconnects: bool = False,
        before_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Drop the reply to the next request containing ``marker`` (once).

        Args:
            marker: bytes the request must contain; the default matches a store's
                scripts and none of the commands a new connection sends first.
            refuse_reconnects: after the drop, close every new client connection at
                once (the client's retries then fail too).
            before_close: awaited after the reply is dropped and before the client
                connection is closed, i.e. between the client's first attempt and its
                retry.
        """
        self._marker = self._recording = marker
        self._refuse_after = refuse_reconnects
        self._before_close = before_close

    async def _serve(self, client: SocketStream) -> None:
        async with client:
            self.connections += 1
            if self._refusing:
                self.refused += 1
                return
            try:
                upstream = await anyio.connect_tcp(*self._upstream)
            except OSError:
                return
            link = _Link()
            async with upstream, anyio.create_task_group() as tg:
                tg.start_soon(self._requests, client, upstream, link, tg.cancel_scope)
                tg.start_soon(self._replies, upstream, client, link, tg.cancel_scope)

    async def _requests(
        self, client: ByteStream, upstream: ByteStream, link: _Link, scope: CancelScope
    ) -> None:
        with contextlib.suppress(*_GONE):
            async for data in client:
                if self._recording is not None and self._recording in data:
                    self.requests.append(data)
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    link.doomed = True  # before forwarding: the next reply is this one's
                await upstream.send(data)
        scope.cancel()

    async def _replies(
        self, upstream: ByteStream, client: ByteStream, link: _Link, scope: CancelScope
    ) -> None:
        with contextlib.suppress(*_GONE):
            async for data in upstream:
                if link.doomed:
                    # Every command of the request ran before the server wrote any of
                    # its replies; the client gets none of them.
                    self.dropped = data
                    if self._before_close is not None:
                        await self._before_close()
                    self._refusing = self._refuse_after
                    await client.aclose()  # the client reads EOF: "connection closed"
                    self.lost.set()
                    break
                await client.send(data)
        scope.cancel()  # leaving the task group closes the other side too


@contextlib.asynccontextmanager
async def open_proxy(upstream_url: str) -> AsyncIterator[ReplyDroppingProxy]:
    """A :class:`ReplyDroppingProxy` in front of the Redis at ``upstream_url``."""
    parts = urlsplit(upstream_url)
    proxy = ReplyDroppingProxy(
        parts.hostname or "127.0.0.1", parts.port or 6379, parts.path or "/0"
    )
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        proxy.port = listener.extra(SocketAttribute.local_port)
        tg.start_soon(listener.serve, proxy._serve)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()
