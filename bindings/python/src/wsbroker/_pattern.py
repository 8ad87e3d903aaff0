"""Destination patterns, with the broker's rule (``src/broker/pattern.rs``).

``**`` matches any run of characters, separators included; ``*`` matches a run without a
separator (``/`` or ``.``); every other character matches itself; the whole destination must
match. Used to route polled application messages to the handler the broker matched.
"""

from __future__ import annotations

import functools
import re
from typing import Pattern


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "*":
            j = i
            while j < len(pattern) and pattern[j] == "*":
                j += 1
            out.append(".*" if j - i >= 2 else "[^/.]*")
            i = j
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def matches(pattern: str, destination: str) -> bool:
    """True when ``destination`` matches ``pattern``."""
    return compile_pattern(pattern).fullmatch(destination) is not None
