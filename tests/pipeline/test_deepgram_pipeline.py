"""The whole pipeline with Deepgram (a real HTTP server on loopback) on a half-silent file.

Only speech is uploaded, so the server receives (and bills) well under the media
duration; the words it returns for several packed windows land on the original
timeline, inside the stretches of sound they were heard in, with their speakers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioflow import Pipeline
from audioflow.testing import FakeDeepgramServer
from audioflow.testing.media import AudioTrack, write_media
from audioflow.transcribers.deepgram import DeepgramTranscriber

pytestmark = pytest.mark.anyio
KEY = "pipeline-test-key"
RATE = 16_000
# 60 s: ten 2.4 s stretches of "speech" (a tone) separated by 3.6 s of silence.
SPANS = [(2.0 + 6.0 * i, 4.4 + 6.0 * i) for i in range(10)]


def half_silent(path: Path) -> Path:
    audio = np.zeros(60 * RATE, dtype=np.float32)
    for start, end in SPANS:
        a, b = round(start * RATE), round(end * RATE)
        audio[a:b] = 0.3 * np.sin(2 * np.pi * 300 * np.arange(b - a) / RATE)
    return write_media(path, AudioTrack(samples=audio, sample_rate=RATE))


async def test_speech_only_upload_and_words_on_the_original_timeline(tmp_path: Path) -> None:
    path = half_silent(tmp_path / "half.flac")
    with FakeDeepgramServer(api_key=KEY) as server:
        transcriber = DeepgramTranscriber(
            KEY, base_url=server.url, diarize=True, max_window=10.0, max_batch=2
        )
        async with Pipeline(transcriber, formats=["srt", "vtt"]) as pipeline:
            result = await pipeline.run(path)
        received = server.received_audio_seconds
        requests = len(server.requests)
    assert result.media is not None and result.media.duration == pytest.approx(60.0, abs=0.05)
    assert received <= 0.6 * 60.0
    assert requests >= 3  # several packed windows
    assert result.usage.billed_seconds == pytest.approx(received, abs=0.01)
    assert result.usage.requests == requests
    assert result.usage.cost > 0
    words = [w for s in result.transcript.segments for w in s.words]  # type: ignore[union-attr]
    assert len(words) >= len(SPANS)
    for word in words:  # every word lies inside a stretch of sound, on the file's clock
        assert any(a - 0.25 <= word.start and word.end <= b + 0.25 for a, b in SPANS), word
    heard = {next(i for i, (a, b) in enumerate(SPANS) if a - 0.25 <= w.start <= b) for w in words}
    assert heard == set(range(len(SPANS)))  # and every stretch was heard
    assert {w.speaker for w in words} >= {"Speaker 0", "Speaker 1"}
    assert "<v Speaker" in result.artifacts["vtt"]
