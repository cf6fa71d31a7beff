"""Rendering: a :class:`~audioflow.Transcript` into SRT, WebVTT, JSON, TXT and Markdown.

All renderers are pure functions from records to text. SRT and WebVTT go through
:func:`build_cues`, which applies the :class:`CaptionRules`; :func:`render` renders
several formats at once.
"""

from __future__ import annotations

from ._api import FORMATS, render
from ._captions import Cue, Highlight, build_cues, highlights
from ._json import parse_json, render_json
from ._markdown import render_markdown
from ._rules import CaptionRules
from ._srt import render_srt
from ._txt import render_txt
from ._vtt import render_vtt

__all__ = [
    "FORMATS",
    "CaptionRules",
    "Cue",
    "Highlight",
    "build_cues",
    "highlights",
    "parse_json",
    "render",
    "render_json",
    "render_markdown",
    "render_srt",
    "render_txt",
    "render_vtt",
]
