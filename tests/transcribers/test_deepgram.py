"""DeepgramTranscriber against FakeDeepgramServer over real HTTP on loopback.

Runs on asyncio and trio: the SDK's own retry sleeps (``asyncio.sleep``) are never
reached because the transcriber tells it ``max_retries=0`` and retries itself.
"""

from __future__ import annotations

import logging
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio.lowlevel
import pytest

from audioflow import (
    MissingDependencyError,
    RateLimitedError,
    TranscriberAuthError,
    TranscriberUnavailableError,
    TranscriptionError,
)
from audioflow.testing import FakeDeepgramServer, Fault
from audioflow.transcribers import AudioWindow
from audioflow.transcribers.deepgram import DeepgramTranscriber
from audioflow.transcribers.deepgram._errors import parse_retry_after
from support.deepgram_audio import SR, bursts, expected_word_times, window

pytestmark = pytest.mark.anyio

KEY = "dg-SECRET-6b1f0e9a7c"


class RecordingSleep:
    """Stands in for anyio.sleep: records the delays, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def server() -> Iterator[FakeDeepgramServer]:
    with FakeDeepgramServer(KEY) as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def make(
    server: FakeDeepgramServer, sleep: RecordingSleep
) -> AsyncIterator[Callable[..., DeepgramTranscriber]]:
    made: list[DeepgramTranscriber] = []

    def factory(**options: Any) -> DeepgramTranscriber:
        options.setdefault("base_url", server.url)
        options.setdefault("sleep", sleep)
        options.setdefault("timeout", 10.0)
        transcriber = DeepgramTranscriber(options.pop("api_key", KEY), **options)
        made.append(transcriber)
        return transcriber

    yield factory
    for transcriber in made:
        await transcriber.aclose()


def speech() -> AudioWindow:
    return window(0, 2.0, [(0.5, 1.5)])


async def test_several_windows_come_back_with_words_speakers_and_window_times(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    layouts = [
        (3.0, [(0.5, 1.7), (2.2, 2.8)]),
        (1.5, [(0.0, 1.0)]),
        (4.0, [(0.2, 0.8), (1.5, 2.5), (3.0, 4.0)]),
    ]
    windows = [window(i, d, spans) for i, (d, spans) in enumerate(layouts)]
    transcriber = make(diarize=True, utterances=True)
    results = await transcriber.transcribe(windows)

    assert [r.index for r in results] == [0, 1, 2]
    for result, (duration, spans) in zip(results, layouts, strict=True):
        expected = expected_word_times(spans)
        # One segment per utterance (= per non-silent span), speakers alternating.
        assert [s.speaker for s in result.segments] == [
            f"Speaker {turn % 2}" for turn in range(len(spans))
        ]
        for segment, times in zip(result.segments, expected, strict=True):
            got = [x for w in segment.words for x in (w.start, w.end)]
            assert got == pytest.approx([x for t in times for x in t])  # window-relative
            assert {w.speaker for w in segment.words} == {segment.speaker}
            assert segment.words[-1].text.endswith(".")  # smart_format is on
        assert result.usage.audio_seconds == pytest.approx(duration)
        assert result.usage.requests == 1
    assert [w.text for w in results[0].segments[0].words] == ["Word0", "word1."]

    requests = server.requests
    assert len(requests) == 3
    for request in requests:
        assert request.option("model") == "nova-3"
        assert request.option("diarize") == "true"
        assert request.option("utterances") == "true"
        assert request.option("smart_format") == "true"
        assert request.content_type == "audio/flac"
    assert sorted(r.audio_seconds or 0 for r in requests) == pytest.approx([1.5, 3.0, 4.0])


async def test_billed_seconds_are_the_uploaded_speech_only_windows(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    # A 10 s "file", half silence. Cutting silence is another stage's job; here the
    # two speech-only windows it would hand over (2 s + 3 s) are what gets uploaded.
    source = bursts(10.0, [(1.0, 3.0), (6.0, 9.0)])
    windows = [
        AudioWindow(samples=source[1 * SR : 3 * SR], index=0),
        AudioWindow(samples=source[6 * SR : 9 * SR], index=1),
    ]
    transcriber = make(diarize=True)
    results = await transcriber.transcribe(windows)

    billed = [r.usage.billed_seconds for r in results]
    assert billed == pytest.approx([2.0, 3.0])
    assert sum(billed) == pytest.approx(server.received_audio_seconds)
    assert sum(billed) == pytest.approx(5.0)  # not the file's 10 s
    # Windows run concurrently, so the server saw them in either order.
    received = sorted(r.audio_seconds or 0.0 for r in server.requests)
    assert sorted(billed) == pytest.approx(received)
    rate = 0.0043 + 0.0017  # base + diarization, USD a minute
    assert [r.usage.cost for r in results] == pytest.approx([2 / 60 * rate, 3 / 60 * rate])


async def test_opus_uploads_are_billed_by_what_the_server_decoded(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    [result] = await make(encoding="opus").transcribe([speech()])
    [request] = server.requests
    assert request.content_type == "audio/ogg"
    assert request.audio_seconds is not None
    assert result.usage.billed_seconds == pytest.approx(request.audio_seconds)
    assert result.usage.billed_seconds == pytest.approx(2.0, abs=0.01)
    assert len(result.segments[0].words) == 2


async def test_429_with_retry_after_is_retried_after_that_long(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber], sleep: RecordingSleep
) -> None:
    server.push(Fault.rate_limited(retry_after=7))
    [result] = await make().transcribe([speech()])
    assert [r.status for r in server.requests] == [429, 200]
    assert sleep.delays == [7.0]
    assert result.usage.requests == 2
    assert len(result.segments[0].words) == 2


async def test_retry_after_is_capped(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber], sleep: RecordingSleep
) -> None:
    server.push(Fault.rate_limited(retry_after=3600))
    await make(max_retry_after=5.0).transcribe([speech()])
    assert sleep.delays == [5.0]


async def test_503_is_retried_with_exponential_backoff(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber], sleep: RecordingSleep
) -> None:
    server.push(Fault.unavailable(), Fault.unavailable(status=502))
    [result] = await make(backoff=0.5).transcribe([speech()])
    assert [r.status for r in server.requests] == [503, 502, 200]
    assert sleep.delays == [0.5, 1.0]
    assert result.usage.requests == 3


async def test_429_until_retries_run_out_is_rate_limited_error(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber], sleep: RecordingSleep
) -> None:
    server.push(*[Fault.rate_limited(retry_after=2)] * 3)
    with pytest.raises(RateLimitedError) as caught:
        await make(max_retries=2).transcribe([speech()])
    assert caught.value.retry_after == 2.0
    assert len(server.requests) == 3
    assert sleep.delays == [2.0, 2.0]


async def test_5xx_until_retries_run_out_is_unavailable(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    server.push(*[Fault.unavailable()] * 2)
    with pytest.raises(TranscriberUnavailableError, match="503"):
        await make(max_retries=1).transcribe([speech()])
    assert len(server.requests) == 2


async def test_a_wrong_key_is_auth_error_after_exactly_one_request(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber], sleep: RecordingSleep
) -> None:
    with pytest.raises(TranscriberAuthError, match="INVALID_AUTH"):
        await make(api_key="not-the-key").transcribe([speech()])
    assert [r.status for r in server.requests] == [401]
    assert sleep.delays == []


@pytest.mark.parametrize("status", [403, 400])
async def test_other_refusals_are_not_retried(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber], status: int
) -> None:
    server.push(Fault(status=status))
    expected = TranscriberAuthError if status == 403 else TranscriptionError
    with pytest.raises(expected) as caught:
        await make().transcribe([speech()])
    assert type(caught.value) is expected
    assert len(server.requests) == 1


async def test_an_unreachable_server_is_retried_then_unavailable(
    make: Callable[..., DeepgramTranscriber], sleep: RecordingSleep
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transcriber = make(base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff=0.25)
    with pytest.raises(TranscriberUnavailableError, match="could not reach"):
        await transcriber.transcribe([speech()])
    assert sleep.delays == [0.25, 0.5]  # nothing was sent, so retrying is safe


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), (None, None)],
)
def test_retry_after_header_values(header: str | None, expected: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert parse_retry_after(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    seconds = parse_retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert seconds is not None and 110 < seconds <= 120


async def test_a_slow_server_is_unavailable_after_the_timeout(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    server.push(Fault.slow(60))
    with pytest.raises(TranscriberUnavailableError, match="timeout"):
        await make(timeout=0.3).transcribe([speech()])
    # A read timeout is not retried: Deepgram may still be transcribing (and billing).
    assert len(server.requests) == 1


async def test_malformed_json_is_transcription_error(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    server.push(Fault.malformed())
    with pytest.raises(TranscriptionError) as caught:
        await make().transcribe([speech()])
    assert type(caught.value) is TranscriptionError
    assert len(server.requests) == 1


async def test_json_that_is_not_a_transcript_is_transcription_error(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    server.push(Fault(body=b'{"unexpected": true}'))
    with pytest.raises(TranscriptionError, match="not a transcript") as caught:
        await make().transcribe([speech()])
    assert type(caught.value) is TranscriptionError


async def test_one_failing_window_fails_the_call_with_its_own_error(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    server.push(Fault.unauthorized())
    with pytest.raises(TranscriberAuthError):  # itself, not an ExceptionGroup
        await make(concurrency=1).transcribe([speech(), window(1, 1.0, [(0.0, 1.0)])])


async def test_language_options_and_summarize_reach_the_server(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    transcriber = make(language="en", paragraphs=True, summarize=True, model="nova-2")
    [result] = await transcriber.transcribe([speech()], language="de")
    [request] = server.requests
    assert request.option("language") == "de"
    assert request.option("model") == "nova-2"
    assert request.option("paragraphs") == "true"
    assert request.option("summarize") == "v2"
    assert result.language == "de"
    assert result.usage.cost == pytest.approx(2 / 60 * (0.0043 + 0.01))


async def test_windows_of_a_call_run_concurrently_but_bounded(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    # Each answer is held back, so unbounded uploads would pile up at the server.
    server.push(*[Fault.slow(0.2)] * 6)
    windows = [window(i, 1.0, [(0.0, 1.0)]) for i in range(6)]
    results = await make(concurrency=2).transcribe(windows)
    assert [r.index for r in results] == list(range(6))
    assert len(server.requests) == 6
    assert server.max_in_flight <= 2


async def test_bad_batches_are_refused_before_any_request(
    server: FakeDeepgramServer, make: Callable[..., DeepgramTranscriber]
) -> None:
    transcriber = make(max_batch=2, max_window=1.0)
    with pytest.raises(ValueError, match="at most 2"):
        await transcriber.transcribe([speech()] * 3)
    with pytest.raises(ValueError, match="max_window"):
        await transcriber.transcribe([speech()])
    with pytest.raises(ValueError, match="no samples"):
        await transcriber.transcribe([window(0, 0.0, [])])
    assert server.requests == []


def _exception_texts(exc: BaseException) -> list[str]:
    texts, seen, stack = [], set(), [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current)]
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
    texts.append("".join(traceback.format_exception(exc)))
    return texts


async def test_the_key_is_in_no_repr_log_or_exception(
    server: FakeDeepgramServer,
    make: Callable[..., DeepgramTranscriber],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "deepgram", "fern", "audioflow"):
        caplog.set_level(logging.DEBUG, logger=name)
    transcriber = make(max_retries=1, timeout=0.5)
    assert KEY not in repr(transcriber) and KEY not in str(transcriber)
    assert KEY not in repr(vars(transcriber))

    errors: list[BaseException] = []
    server.push(Fault.rate_limited(retry_after=1))  # retried, then fine
    await transcriber.transcribe([speech()])
    # A server that echoes the key back in its error body (a proxy, a buggy host).
    echo = f'{{"err_code": "X", "err_msg": "bad key {KEY}"}}'.encode()
    scripted = [
        [Fault(status=500, body=echo)] * 2,
        [Fault(status=400, body=echo)],
        [Fault(status=401)],
        [Fault.malformed()],
        [Fault.slow(60)],
    ]
    for faults in scripted:
        server.push(*faults)
        with pytest.raises(TranscriptionError) as caught:
            await transcriber.transcribe([speech()])
        errors.append(caught.value)
    wrong = make(api_key=f"{KEY}-wrong")
    with pytest.raises(TranscriberAuthError) as caught:
        await wrong.transcribe([speech()])
    errors.append(caught.value)

    assert caplog.records, "the SDK/httpx loggers should have logged at DEBUG"
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.args)
    assert KEY not in caplog.text
    # The echoed key made the SDK's error unsafe to chain: a masked stand-in replaces it.
    assert type(errors[0].__cause__).__name__ == "RedactedCause"
    assert "[REDACTED]" in str(errors[0].__cause__)
    for error in errors:
        assert error.__cause__ is not None  # the backend error is kept, scrubbed
        for text in _exception_texts(error):
            assert KEY not in text
    # The httpx request kept on the timeout's cause has its header masked too.
    timeout_cause: Any = errors[4].__cause__
    assert KEY not in str(timeout_cause.request.headers.get("authorization"))
    assert KEY not in repr(wrong)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "deepgram", None)
    with pytest.raises(MissingDependencyError) as caught:
        DeepgramTranscriber(KEY)
    assert caught.value.extra == "deepgram"
    assert "audioflow[deepgram]" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_is_a_transcriber() -> None:
    from audioflow.transcribers import Transcriber

    async with DeepgramTranscriber(KEY, base_url="http://127.0.0.1:9") as transcriber:
        assert isinstance(transcriber, Transcriber)
        assert (transcriber.name, transcriber.max_window, transcriber.max_batch) == (
            "deepgram",
            300.0,
            8,
        )
