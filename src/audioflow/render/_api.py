"""The ``render`` entry point: one transcript into several formats at once."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .._formats import FORMATS
from ..errors import RenderError
from ..records import Transcript
from ._captions import Cue, build_cues
from ._json import render_json
from ._markdown import render_markdown
from ._rules import CaptionRules
from ._srt import render_srt
from ._txt import render_txt
from ._vtt import render_vtt

__all__ = ["FORMATS", "render"]


_CAPTIONS: dict[str, Callable[..., str]] = {"srt": render_srt, "vtt": render_vtt}
_DOCUMENTS: dict[str, Callable[[Transcript], str]] = {
    "json": render_json,
    "txt": render_txt,
    "md": render_markdown,
}


def render(
    transcript: Transcript,
    formats: Iterable[str] = FORMATS,
    rules: CaptionRules | None = None,
) -> dict[str, str]:
    """Render a transcript into each of ``formats``.

    Args:
        transcript: The transcript to render.
        formats: Any of ``"srt"``, ``"vtt"``, ``"json"``, ``"txt"``, ``"md"``
            (case-insensitive, duplicates ignored).
        rules: Caption rules for SRT and WebVTT; :class:`CaptionRules` defaults when
            ``None``. The cues are built once and shared by both.

    Returns:
        A dict from each requested format (lower-case, in the order asked) to its text.

    Raises:
        ValueError: A format is unknown (checked before anything is rendered).
        TypeError: ``transcript`` is not a :class:`~audioflow.Transcript`.
        RenderError: Rendering failed (e.g. a word with a non-finite time); the
            original exception is its ``__cause__``.

    Example:
        >>> artifacts = render(transcript, formats=("srt", "txt"))
        >>> print(artifacts["srt"])  # doctest: +SKIP
    """
    if not isinstance(transcript, Transcript):
        raise TypeError(f"render() needs a Transcript, got {type(transcript).__name__}")
    if isinstance(formats, str):
        # A bare "srt" would otherwise iterate as "s", "r", "t".
        formats = (formats,)
    wanted = list(dict.fromkeys(f.lower() for f in formats))
    unknown = [f for f in wanted if f not in _CAPTIONS and f not in _DOCUMENTS]
    if unknown:
        raise ValueError(f"unknown format(s) {unknown}; known: {', '.join(FORMATS)}")
    rules = rules or CaptionRules()
    out: dict[str, str] = {}
    cues: list[Cue] | None = None
    for fmt in wanted:
        try:
            if fmt in _CAPTIONS:
                if cues is None:
                    cues = build_cues(transcript, rules)
                out[fmt] = _CAPTIONS[fmt](cues, highlight_words=rules.highlight_words)
            else:
                out[fmt] = _DOCUMENTS[fmt](transcript)
        except Exception as exc:
            raise RenderError(f"rendering {fmt} failed: {exc}", stage="render") from exc
    return out
