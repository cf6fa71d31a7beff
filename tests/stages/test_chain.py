"""The three stages composed: video file → Decode → Quality → DetectSpeech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioflow.stages import Decode, DetectSpeech, Quality, StageContext, run_stages
from audioflow.testing.media import AudioTrack, VideoTrack, noise, silence, write_media

pytestmark = pytest.mark.anyio

RATE = 16_000
SPEECH = Path(__file__).parent.parent / "data" / "speech_en_16k.flac"


async def test_video_to_speech_segments_on_the_original_timeline(tmp_path: Path) -> None:
    speech = np.concatenate([c.samples for c in await run_stages([SPEECH], Decode())])
    seconds = len(speech) / RATE
    x = np.concatenate(
        [silence(4.0, RATE), speech, silence(5.0, RATE), speech, silence(3.0, RATE)]
    )
    x = (x + noise(len(x) / RATE, RATE, 0.002, seed=1)).astype(np.float32)
    total = len(x) / RATE
    path = write_media(
        tmp_path / "talk.mp4",
        AudioTrack(np.tile(x, (2, 1)), RATE),
        video=VideoTrack(total),
    )
    calls: list[str] = []
    ctx = StageContext(job_id="job-9", report=lambda stage, fraction, message: calls.append(stage))
    decode, quality = Decode(chunk_seconds=4.0), Quality()
    segments = await run_stages(
        [path], decode, quality, DetectSpeech("energy", padding=0.2), ctx=ctx, buffer=1
    )
    assert decode.info is not None
    assert decode.info.has_video
    assert decode.info.decoded_duration is not None
    assert abs(decode.info.decoded_duration - total) <= 0.03
    assert quality.report is not None
    assert quality.report.level in {"excellent", "good"}
    truth = [(4.0, 4.0 + seconds), (9.0 + seconds, 9.0 + 2 * seconds)]
    assert len(segments) == 2
    for segment, (start, end) in zip(segments, truth, strict=True):
        assert start - 0.5 <= segment.start <= start + 0.1
        assert end - 0.1 <= segment.end <= end + 0.5
    assert {"decode", "quality", "vad"} <= set(calls)
