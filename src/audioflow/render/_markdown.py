"""Markdown rendering: a readable document, one paragraph per speaker turn."""

from __future__ import annotations

import re

from .._text import speaker_label
from ..records import Transcript
from ._timestamps import clock
from ._turns import Run, runs

__all__ = ["render_markdown"]

# Characters that could start markup anywhere in a paragraph (emphasis, links, code,
# HTML, tables, headings); a backslash makes each literal in CommonMark.
_MARKUP = re.compile(r"([\\`*_\[\]<>#|~!&])")


def escape_markdown(text: str) -> str:
    """Backslash-escape characters Markdown would read as markup."""
    return _MARKUP.sub(r"\\\1", text)


def _paragraphs(transcript: Transcript, pause: float) -> list[list[Run]]:
    groups: list[list[Run]] = []
    for run in runs(transcript):
        if groups:
            last = groups[-1][-1]
            same = run.speaker == last.speaker
            # Without speakers, a long pause is the only sign of a new turn.
            if same and (run.speaker is not None or run.start - last.end < pause):
                groups[-1].append(run)
                continue
        groups.append([run])
    return groups


def render_markdown(
    transcript: Transcript, *, title: str = "Transcript", pause: float = 2.0
) -> str:
    """A Markdown document: a heading, a details line, a paragraph per speaker turn.

    Each paragraph opens with its start time and speaker in bold, e.g.
    ``**[00:00:04] Speaker 1:** Fine, thanks.`` (no speaker part when unknown). Without
    speakers, a pause of ``pause`` seconds or more starts a new paragraph.

    Args:
        transcript: The transcript.
        title: The level-1 heading.
        pause: Seconds of silence that end a paragraph when speakers are unknown.

    Returns:
        The document, ending in a newline.
    """
    out = [f"# {escape_markdown(title)}\n"]
    details = []
    if transcript.language:
        details.append(f"Language: {escape_markdown(transcript.language)}")
    if transcript.duration is not None:
        details.append(f"Duration: {clock(transcript.duration)}")
    if details:
        out.append(" · ".join(details) + "\n")
    groups = _paragraphs(transcript, pause)
    if not groups:
        out.append("_No speech._\n")
    for group in groups:
        label = speaker_label(group[0].speaker)
        who = f" {escape_markdown(label)}:" if label else ""
        text = " ".join(escape_markdown(run.text) for run in group)
        out.append(f"**[{clock(group[0].start)}]{who}** {text}\n")
    return "\n".join(out)
