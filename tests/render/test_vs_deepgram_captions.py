"""Our cues against Deepgram's own ``deepgram-captions`` package, on the same responses.

Both SRT outputs are parsed back with pysubs2 and measured the same way, as a viewer
sees them: every text line counts (deepgram-captions adds a ``[speaker N]`` line when
the speaker changes), reading speed is the lines joined by one space over the cue's
displayed time. deepgram-captions packs a fixed 8 words a cue on one line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pysubs2
import pytest
from deepgram_captions import DeepgramConverter, srt
from deepgram_shapes import deepgram_response

from audioflow.records import Transcript
from audioflow.render import CaptionRules, build_cues, render_srt

DATA = Path(__file__).parent.parent / "data" / "deepgram"
RULES = CaptionRules()
_LABEL = re.compile(r"^\[speaker \d+\]$")


def _breaks(srt_text: str) -> tuple[Counter[str], list[str], int]:
    """Rule breaks by kind, the words shown (speaker labels left out), and cue count."""
    events = pysubs2.SSAFile.from_string(srt_text, format_="srt")
    breaks: Counter[str] = Counter()
    words: list[str] = []
    previous_end = None
    for event in events:
        lines = event.plaintext.split("\n")
        shown = [w for line in lines if not _LABEL.match(line) for w in line.split()]
        words += shown
        single = len(shown) == 1
        duration = (event.end - event.start) / 1000
        if any(len(line) > RULES.max_chars_per_line for line in lines) and not single:
            breaks["line over 42 chars"] += 1
        if len(lines) > RULES.max_lines:
            breaks["over 2 lines"] += 1
        if duration > RULES.max_duration and not single:
            breaks["over 7 s"] += 1
        if len(" ".join(lines)) > RULES.max_chars_per_second * duration:
            breaks["over 20 chars/s"] += 1
        if previous_end is not None and event.start < previous_end:
            breaks["overlap"] += 1
        previous_end = event.end
    return breaks, words, len(events)


CASES: dict[str, dict[str, Any]] = {
    "fixture-rich": json.loads(
        (DATA / "interview_nova3_diarize_utterances_paragraphs.json").read_text()
    ),
    "fixture-plain": json.loads((DATA / "interview_nova3_plain.json").read_text()),
    "utterances+diarize": deepgram_response(),
    "words+diarize": deepgram_response(utterances=False),
    "paragraphs, no diarize": deepgram_response(utterances=False, paragraphs=True, diarize=False),
    "fast talker": deepgram_response(rate=0.6, seed=3),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fewer_rule_breaks_than_deepgram_captions(name: str) -> None:
    response = CASES[name]
    ours, our_words, our_cues = _breaks(render_srt(build_cues(Transcript.from_deepgram(response))))
    theirs, their_words, their_cues = _breaks(srt(DeepgramConverter(response)))

    print(
        f"\n{name}: audioflow {our_cues} cues, {sum(ours.values())} breaks {dict(ours)}"
        f" | deepgram-captions {their_cues} cues, {sum(theirs.values())} breaks {dict(theirs)}"
    )
    # No word lost or reordered against deepgram-captions.
    assert our_words == their_words
    assert sum(ours.values()) < sum(theirs.values())
    # The hard rules hold outright (no single over-long word in these talks).
    for kind in ("line over 42 chars", "over 2 lines", "over 7 s", "overlap"):
        assert ours[kind] == 0
    assert ours["over 20 chars/s"] <= theirs["over 20 chars/s"]
