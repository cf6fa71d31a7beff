"""Line layout: a cue's words into its lines."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._text import ends_clause, ends_sentence, is_short_word
from ._rules import CaptionRules

__all__ = ["layout_lines"]


def layout_lines(texts: Sequence[str], rules: CaptionRules) -> tuple[str, ...]:
    """Lay a cue's words out in the fewest lines, balanced, preferring punctuation.

    The cue splitter guarantees the words fit in ``max_lines`` lines (or are one word).
    """
    joined = " ".join(texts)
    width = rules.max_chars_per_line
    if len(texts) == 1 or len(joined) <= width:
        return (joined,)
    # Greedy filling gives the fewest lines; then balance within that many.
    count, line_len = 1, len(texts[0])
    for text in texts[1:]:
        if line_len + 1 + len(text) <= width:
            line_len += 1 + len(text)
        else:
            count, line_len = count + 1, len(text)
    n = len(texts)
    prefix = [0]
    for text in texts:
        prefix.append(prefix[-1] + len(text))

    def length(a: int, b: int) -> int:
        return prefix[b] - prefix[a] + (b - a - 1)

    def bonus(b: int) -> float:
        # Line breaks after punctuation read better; worth a few characters of balance.
        if b >= n:
            return 0.0
        text = texts[b - 1]
        if ends_sentence(text) or ends_clause(text):
            return 150.0
        return -80.0 if is_short_word(text) else 0.0

    inf = math.inf
    # cost[k][b]: best cost of laying words[:b] out in k lines.
    cost = [[inf] * (n + 1) for _ in range(count + 1)]
    back = [[0] * (n + 1) for _ in range(count + 1)]
    cost[0][0] = 0.0
    for k in range(1, count + 1):
        for b in range(1, n + 1):
            for a in range(b - 1, -1, -1):
                size = length(a, b)
                if size > width:
                    break
                if cost[k - 1][a] == inf:
                    continue
                value = cost[k - 1][a] + (width - size) ** 2 - bonus(b)
                if value < cost[k][b]:
                    cost[k][b] = value
                    back[k][b] = a
    lines: list[str] = []
    b = n
    for k in range(count, 0, -1):
        a = back[k][b]
        lines.append(" ".join(texts[a:b]))
        b = a
    lines.reverse()
    return tuple(lines)
