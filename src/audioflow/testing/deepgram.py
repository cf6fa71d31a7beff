"""A local, real-HTTP stand-in for Deepgram's pre-recorded API (``POST /v1/listen``).

:class:`FakeDeepgramServer` listens on ``127.0.0.1`` (a random port) in a daemon thread
and speaks the parts of Deepgram's HTTP contract a client depends on:

* ``Authorization: Token <key>``; any other key gets ``401`` with Deepgram's error body
  ``{"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": ...}``.
* A raw audio body (``Content-Type: audio/*`` or ``application/octet-stream``), sent
  with ``Content-Length`` or ``Transfer-Encoding: chunked``. The audio is decoded with
  PyAV; undecodable bytes get Deepgram's ``400`` ("failed to process audio: corrupt or
  unsupported data").
* Query options (``model``, ``language``, ``punctuate``, ``smart_format``,
  ``diarize``, ``utterances``, ``paragraphs``, ``summarize``...) shape the JSON as
  Deepgram does (see :mod:`audioflow.testing._fake_deepgram_content` for what is
  "heard": one word per ``word_step`` seconds of non-silent audio).

It fails on demand: :meth:`FakeDeepgramServer.push` queues :class:`Fault` s that the
next requests get, in order (429 with ``Retry-After``, 503, 401, a delay longer than
the client's timeout, a malformed JSON body). Every request is recorded as a
:class:`RecordedRequest` (the key redacted unless ``redact_key=False``).

Example::

    with FakeDeepgramServer(api_key="k") as server:
        server.push(Fault.rate_limited(retry_after=2))
        ...  # point the client at server.url
        assert [r.status for r in server.requests] == [429, 200]

Not modelled: callbacks, ``url`` JSON bodies, multichannel, streaming (WebSocket).
"""

from __future__ import annotations

import collections
import http.server
import json
import threading
import types
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread

from ._fake_deepgram_content import build_response, hear

__all__ = ["FakeDeepgramServer", "Fault", "RecordedRequest"]

_REDACTED = "Token [REDACTED]"


@dataclass(frozen=True)
class Fault:
    """How the server answers one request instead of (or before) transcribing it.

    ``status`` other than 200 answers that status with a Deepgram error body (or
    ``body`` if given); ``delay`` seconds pass before any answer; ``body`` with status
    200 replaces the transcript (e.g. malformed JSON).
    """

    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    body: bytes | None = None

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1) -> Fault:
        """429 Too Many Requests, with ``Retry-After: <retry_after>`` unless ``None``."""
        return cls(status=429, retry_after=None if retry_after is None else str(retry_after))

    @classmethod
    def unavailable(cls, status: int = 503, retry_after: float | str | None = None) -> Fault:
        """A 5xx answer (503 by default)."""
        return cls(status=status, retry_after=None if retry_after is None else str(retry_after))

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 with Deepgram's INVALID_AUTH body, whatever key was sent."""
        return cls(status=401)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (to trip a client timeout)."""
        return cls(delay=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """200 with a truncated JSON body."""
        return cls(body=b'{"metadata": {"request_id": "x", "duration": 1.0}, "results": {"chan')


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    content_type: str | None
    body_size: int
    chunked: bool
    status: int
    audio_seconds: float | None = None
    request_id: str | None = None

    def option(self, name: str) -> str | None:
        """The last value of query option ``name``, or ``None``."""
        values = self.query.get(name)
        return values[-1] if values else None


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", "Bad Request: failed to process audio: corrupt or unsupported data"),
    401: ("INVALID_AUTH", "Invalid credentials."),
    403: ("INSUFFICIENT_PERMISSIONS", "You do not have permission to access this resource."),
    404: ("NOT_FOUND", "Not found."),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed."),
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please try again later."),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects of a real server
    server: _Server
    timeout = 30  # drop idle keep-alive connections eventually

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the recorded requests are the log; stderr noise helps no test

    def do_GET(self) -> None:
        self._drain_body()
        self._error(405, fake=self.server.fake, request_id=str(uuid.uuid4()))

    def do_POST(self) -> None:
        fake = self.server.fake
        fake._enter()
        try:
            self._post(fake)
        finally:
            fake._leave()

    def _post(self, fake: FakeDeepgramServer) -> None:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = self._drain_body()
        number, fault = fake._next()
        request_id = str(uuid.UUID(int=number))
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k: v for k, v in self.headers.items()}
        if fake.redact_key:
            headers = {
                k: (_REDACTED if k.lower() == "authorization" else v) for k, v in headers.items()
            }
        content_type = self.headers.get("Content-Type")
        status, payload, seconds, extra = self._answer(split.path, body, query, number, fault)
        fake._record(
            RecordedRequest(
                method="POST",
                path=split.path,
                query=query,
                headers=headers,
                content_type=content_type,
                body_size=len(body),
                chunked=chunked,
                status=status,
                audio_seconds=seconds,
                request_id=request_id,
            )
        )
        if fault.delay and fake._stopping.wait(fault.delay):
            return  # stopping: drop the connection rather than answer
        if status != 200 and payload is None:
            self._error(status, fake=fake, request_id=request_id, extra=extra)
        else:
            self._send(status, payload or b"", extra)

    def _answer(
        self,
        path: str,
        body: bytes,
        query: dict[str, list[str]],
        number: int,
        fault: Fault,
    ) -> tuple[int, bytes | None, float | None, dict[str, str]]:
        fake = self.server.fake
        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.status != 200:
            return fault.status, fault.body, None, extra
        if path != "/v1/listen":
            return 404, None, None, {}
        if self.headers.get("Authorization") != f"Token {fake._api_key}":
            return 401, None, None, {}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not (content_type.startswith("audio/") or content_type == "application/octet-stream"):
            return 400, None, None, {}
        try:
            heard = hear(body, silence_threshold=fake.silence_threshold)
        except ValueError:
            return 400, None, None, {}
        if fault.body is not None:
            return 200, fault.body, heard.duration, {}
        response = build_response(
            heard, body, query, request_number=number, script=fake.script, word_step=fake.word_step
        )
        return 200, json.dumps(response).encode(), heard.duration, {}

    def _drain_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _error(
        self,
        status: int,
        *,
        fake: FakeDeepgramServer,
        request_id: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        code, message = _ERRORS.get(status, ("Service Unavailable", "Service unavailable."))
        body = {"err_code": code, "err_msg": message, "request_id": request_id}
        self._send(status, json.dumps(body).encode(), extra or {})

    def _send(self, status: int, payload: bytes, extra: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout): fine


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeDeepgramServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-request is expected here, not an error


@dataclass
class _State:
    faults: collections.deque[Fault] = field(default_factory=collections.deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    count: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class FakeDeepgramServer:
    """Deepgram's ``POST /v1/listen`` on ``127.0.0.1``, decoding what it receives.

    Args:
        api_key: The only key the server accepts (``Authorization: Token <key>``).
        script: Words to say, cycled; default ``word0``, ``word1``... per request.
        word_step: Seconds of non-silent audio per word.
        silence_threshold: RMS (full scale 1.0) at or below which a 20 ms frame is
            silence.
        redact_key: Record the ``Authorization`` header as ``Token [REDACTED]``.

    Use as a context manager (sync or async), or call :meth:`start` / :meth:`stop`.
    """

    host: ClassVar[str] = "127.0.0.1"

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        script: Sequence[str] | None = None,
        word_step: float = 0.5,
        silence_threshold: float = 0.01,
        redact_key: bool = True,
    ) -> None:
        self._api_key = api_key
        self.script = tuple(script) if script else None
        self.word_step = word_step
        self.silence_threshold = silence_threshold
        self.redact_key = redact_key
        self._lock = threading.Lock()
        self._state = _State()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        # The accepted key stays out of reprs, like any secret.
        where = self.url if self._server is not None else "stopped"
        return f"FakeDeepgramServer({where}, requests={len(self.requests)})"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the base URL to give a client)."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> FakeDeepgramServer:
        """Bind a random port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        server = _Server((self.host, 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-deepgram",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; slow (delayed) answers in progress are dropped."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeDeepgramServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeDeepgramServer:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        # shutdown() waits for the serve loop's next poll: not on the event loop.
        await anyio.to_thread.run_sync(self.stop)

    def push(self, *faults: Fault) -> None:
        """Queue ``faults``: the next ``len(faults)`` requests get them, in order."""
        with self._lock:
            self._state.faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        """How many queued faults no request has taken yet."""
        with self._lock:
            return len(self._state.faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._state.requests)

    @property
    def received_audio_seconds(self) -> float:
        """Seconds of audio decoded from requests answered 200."""
        return sum(r.audio_seconds or 0.0 for r in self.requests if r.status == 200)

    @property
    def max_in_flight(self) -> int:
        """The most POSTs the server was handling at the same moment."""
        with self._lock:
            return self._state.max_in_flight

    def _enter(self) -> None:
        with self._lock:
            self._state.in_flight += 1
            self._state.max_in_flight = max(self._state.max_in_flight, self._state.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._state.in_flight -= 1

    def _next(self) -> tuple[int, Fault]:
        with self._lock:
            self._state.count += 1
            fault = self._state.faults.popleft() if self._state.faults else Fault()
            return self._state.count, fault

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._state.requests.append(request)
