"""The Deepgram client: :class:`DeepgramTranscriber` (see the package docs)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ...errors import MissingDependencyError, TranscriptionError
from ...records import Transcript, Usage
from ..base import AudioWindow, WindowCallback, WindowTranscript
from ._upload import UploadEncoding, encode_upload

if TYPE_CHECKING:
    import httpx
    from deepgram import AsyncDeepgramClient

    from ._errors import Failure as Failure

__all__ = ["DeepgramTranscriber"]

logger = logging.getLogger("audioflow.transcribers.deepgram")  # the package's name


def _require_sdk() -> None:
    try:
        with warnings.catch_warnings():
            # deepgram-sdk 7 imports websockets' deprecated ``InvalidStatusCode`` when
            # ``client.listen.v1`` is first touched; that warning is theirs, not the
            # caller's, and breaks callers running with ``-W error``. Import it here,
            # once, with that one warning silenced.
            warnings.filterwarnings(
                "ignore", message=r"websockets\..* is deprecated", category=DeprecationWarning
            )
            import deepgram.listen.v1.client  # noqa: F401
            import httpx  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("deepgram-sdk", "deepgram") from exc


def _environment(base_url: str) -> Any:
    """A ``DeepgramClientEnvironment`` whose REST and WebSocket URLs use ``base_url``."""
    from deepgram import DeepgramClientEnvironment

    base = base_url.rstrip("/")
    websocket = "ws" + base[4:] if base.startswith("http") else base
    try:
        return DeepgramClientEnvironment(
            base=base, production=websocket, agent=websocket, agent_rest=base
        )
    except TypeError:  # 7.x releases before agent_rest was added
        return DeepgramClientEnvironment(  # type: ignore[call-arg]
            base=base, production=websocket, agent=websocket
        )


class _Secret:
    """Holds the API key; masked in ``repr`` so ``vars()`` dumps do not show it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "_Secret('***')"


class DeepgramTranscriber:
    """Transcribes windows with Deepgram (``POST /v1/listen``).

    Args:
        api_key: A Deepgram API key. It is a secret: it never appears in ``repr``, log
            records or error messages (nor in the messages of chained causes).
        model: Deepgram model (``nova-3``...).
        language: BCP-47 language sent when ``transcribe`` is not given one; ``None``
            leaves Deepgram's default.
        smart_format: Deepgram's smart formatting, on by default: its punctuation
            gives sentence segments.
        punctuate: Deepgram's punctuation; ``None`` leaves Deepgram's default.
        diarize: ask Deepgram who speaks each word (``Word.speaker``).
        utterances: ask for Deepgram's utterances (segments by pause and speaker).
        paragraphs: ask for Deepgram's paragraphs.
        summarize: Ask for a summary (``summarize=v2``); billed extra, not returned by
            ``transcribe``.
        base_url: REST base URL (default Deepgram's); a self-hosted or local server
            such as :class:`audioflow.testing.FakeDeepgramServer`.
        timeout: Seconds for one HTTP request (connect, upload and answer).
        max_retries: Further attempts after a 429, 5xx or a failed connection.
        backoff: First retry delay in seconds without ``Retry-After``; doubles on each
            retry, up to ``max_backoff``.
        max_retry_after: Cap on a server's ``Retry-After`` hint.
        encoding: Upload as ``"flac"`` (lossless) or ``"opus"`` (Opus in Ogg).
        max_window: Longest window in seconds accepted.
        max_batch: Most windows per ``transcribe`` call.
        concurrency: Windows of one call in flight at once.
        rate_per_minute: USD per billed minute, for ``Usage.cost``.
        diarization_rate_per_minute: USD per billed minute with ``diarize``, added.
        summarization_rate_per_minute: USD per billed minute with ``summarize``, added.
        sleep: Awaitable sleep used between retries (tests inject a recorder).
        http_client: An ``httpx.AsyncClient`` the caller owns (proxies, transports);
            by default the transcriber makes and closes its own.

    Raises:
        MissingDependencyError: deepgram-sdk is not installed.
        ValueError: a bad argument.
    """

    name = "deepgram"
    #: Short pauses between packed segments: every uploaded second is billed.
    pack_gap = 0.1

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "nova-3",
        language: str | None = None,
        smart_format: bool = True,
        punctuate: bool | None = None,
        diarize: bool = False,
        utterances: bool = False,
        paragraphs: bool = False,
        summarize: bool = False,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        encoding: UploadEncoding = "flac",
        max_window: float = 300.0,
        max_batch: int = 8,
        concurrency: int = 4,
        rate_per_minute: float = 0.0043,
        diarization_rate_per_minute: float = 0.0017,
        summarization_rate_per_minute: float = 0.01,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key must be a non-empty string")
        if encoding not in ("flac", "opus"):
            raise ValueError(f"encoding must be 'flac' or 'opus', not {encoding!r}")
        if timeout <= 0 or max_window <= 0 or max_batch < 1 or concurrency < 1:
            raise ValueError("timeout and max_window must be > 0; max_batch, concurrency >= 1")
        if max_retries < 0 or backoff < 0 or max_backoff < 0 or max_retry_after < 0:
            raise ValueError("max_retries, backoff, max_backoff, max_retry_after must be >= 0")
        _require_sdk()
        import httpx
        from deepgram import AsyncDeepgramClient

        self.model = model
        self.language = language
        self.smart_format = smart_format
        self.punctuate = punctuate
        self.diarize = diarize
        self.utterances = utterances
        self.paragraphs = paragraphs
        self.summarize = summarize
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.encoding: UploadEncoding = encoding
        self.max_window = float(max_window)
        self.max_batch = max_batch
        self.concurrency = concurrency
        self.rate_per_minute = (
            rate_per_minute
            + (diarization_rate_per_minute if diarize else 0.0)
            + (summarization_rate_per_minute if summarize else 0.0)
        )
        self._sleep = sleep
        self._secret = _Secret(api_key)
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        options: dict[str, Any] = {}
        if base_url is not None:
            options["environment"] = _environment(base_url)
        self._client: AsyncDeepgramClient = AsyncDeepgramClient(
            api_key=api_key, timeout=timeout, max_retries=0, httpx_client=self._http, **options
        )

    @property
    def fingerprint(self) -> str:
        """What else decides this transcriber's words (the model and the features
        asked for); ``Pipeline`` keys checkpoints by it. The key is not part of it."""
        return "|".join(
            str(x)
            for x in (
                self.model,
                self.language,
                self.smart_format,
                self.punctuate,
                self.diarize,
                self.utterances,
                self.paragraphs,
                self.encoding,
            )
        )

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs, tracebacks and error reports.
        return (
            f"DeepgramTranscriber(model={self.model!r}, language={self.language!r}, "
            f"diarize={self.diarize!r}, encoding={self.encoding!r}, "
            f"base_url={self.base_url!r})"
        )

    async def __aenter__(self) -> DeepgramTranscriber:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (unless the caller passed and owns it)."""
        if self._owns_http:
            await self._http.aclose()

    async def transcribe(
        self,
        windows: Sequence[AudioWindow],
        *,
        language: str | None = None,
        on_window: WindowCallback | None = None,
    ) -> list[WindowTranscript]:
        """Transcribe up to ``max_batch`` windows, ``concurrency`` at a time.

        Returns one :class:`WindowTranscript` per window, in order, times relative to
        the window's start, with ``Usage`` (``billed_seconds`` is the duration Deepgram
        reported receiving; ``requests`` counts retries). ``on_window`` gets each
        window's result as soon as Deepgram answered it, so the windows answered (and
        billed) before another window of the call fails are not lost.

        Raises:
            TranscriberAuthError: 401/403 (not retried).
            RateLimitedError: still 429 after ``max_retries`` retries.
            TranscriberUnavailableError: timeout, unreachable, or still 5xx.
            TranscriptionError: any other refusal, or a body that is not a transcript.
            ValueError: too many windows, or a window longer than ``max_window``.
        """
        if len(windows) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} windows per call, got {len(windows)}")
        for window in windows:
            if len(window.samples) == 0:
                raise ValueError(f"window {window.index} has no samples")
            if window.duration > self.max_window + 1e-6:
                raise ValueError(
                    f"window {window.index} is {window.duration:.3f} s long; "
                    f"max_window is {self.max_window} s"
                )
        results: list[WindowTranscript | None] = [None] * len(windows)
        failures: list[Exception] = []
        # ``concurrency`` workers take the windows in order from one iterator, so they
        # start in window order whatever the event loop's scheduling (trio shuffles
        # it): the earliest windows are answered, and checkpointed, first.
        todo = iter(enumerate(windows))

        async def work() -> None:
            for position, window in todo:
                try:
                    result = await self._one(window, language or self.language)
                except Exception as exc:
                    # The first failure wins and stops the rest; raised below as itself,
                    # not wrapped in an ExceptionGroup.
                    failures.append(exc)
                    group.cancel_scope.cancel()
                    return
                results[position] = result
                if on_window is not None:
                    on_window(result)

        async with anyio.create_task_group() as group:
            for _ in range(min(self.concurrency, len(windows))):
                group.start_soon(work)
        if failures:
            raise failures[0]
        return [r for r in results if r is not None]

    async def _one(self, window: AudioWindow, language: str | None) -> WindowTranscript:
        data, mime = await anyio.to_thread.run_sync(
            encode_upload, window.samples, window.sample_rate, self.encoding
        )
        requests = 0
        while True:
            requests += 1
            outcome = await self._attempt(data, mime, language)
            if isinstance(outcome, dict):
                break
            retries_done = requests - 1
            if not outcome.retryable or retries_done >= self.max_retries:
                logger.debug(
                    "deepgram window %d: giving up after %d request(s): %s",
                    window.index,
                    requests,
                    outcome.error,
                )
                raise outcome.error
            delay = self._delay(retries_done, outcome.retry_after)
            logger.info(
                "deepgram window %d: %s; retrying in %.2f s", window.index, outcome.error, delay
            )
            await self._sleep(delay)
        try:
            transcript = Transcript.from_deepgram(outcome)
        except (ValueError, TypeError) as exc:
            from ._errors import scrub

            secret = self._secret.value
            error = TranscriptionError(
                f"Deepgram's answer is not a transcript: {exc}".replace(secret, "[REDACTED]")
            )
            error.__cause__ = scrub(exc, secret)
        else:
            billed = transcript.duration if transcript.duration is not None else window.duration
            return WindowTranscript(
                index=window.index,
                segments=transcript.segments,
                language=transcript.language or language,
                usage=Usage(
                    audio_seconds=window.duration,
                    billed_seconds=billed,
                    cost=billed / 60.0 * self.rate_per_minute,
                    requests=requests,
                ),
            )
        raise error  # outside the except block, so no __context__ to leak through

    def _delay(self, retries_done: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return float(min(self.backoff * 2.0**retries_done, self.max_backoff))

    async def _attempt(
        self, data: bytes, mime: str, language: str | None
    ) -> dict[str, Any] | Failure:
        """One request: the response as a dict, or a :class:`Failure` (never raises it).

        Failures are returned, not raised, so that the caller raises the mapped error
        outside any ``except`` block: Python then sets no ``__context__``, and the only
        link to the backend exception is the scrubbed ``__cause__``.
        """
        import httpx
        from deepgram.core.api_error import ApiError
        from deepgram.core.parse_error import ParsingError

        from ._errors import Failure, from_api_error, from_transport_error, scrub

        secret = self._secret.value
        try:
            response = await self._client.listen.v1.media.transcribe_file(
                request=data,
                model=self.model,
                language=language,
                smart_format=self.smart_format,
                punctuate=self.punctuate,
                diarize=self.diarize or None,
                utterances=self.utterances or None,
                paragraphs=self.paragraphs or None,
                summarize="v2" if self.summarize else None,
                # The SDK always says application/octet-stream; Deepgram sniffs the
                # container either way, but the real type helps proxies and logs.
                request_options={"additional_headers": {"content-type": mime}, "max_retries": 0},
            )
        except ApiError as exc:
            failure = from_api_error(exc.status_code, exc.body, exc.headers, secret)
            failure.error.__cause__ = scrub(exc, secret)
            return failure
        except httpx.TransportError as exc:
            failure = from_transport_error(exc, self.timeout)
            failure.error.__cause__ = scrub(exc, secret)
            return failure
        except ParsingError as exc:  # not an ApiError: a 2xx body pydantic rejected
            failure = Failure(
                TranscriptionError("Deepgram's answer does not match its response schema"),
                retryable=False,
            )
            failure.error.__cause__ = scrub(exc, secret)
            return failure
        # The SDK parses into lenient pydantic models; dump back to plain JSON types
        # (extra fields such as ``punctuated_word`` are kept) for from_deepgram.
        dumped: dict[str, Any] = response.model_dump(mode="json", exclude_none=True)
        return dumped
