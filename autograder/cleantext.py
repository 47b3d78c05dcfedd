"""Text that a student controls, made safe to store and to show.

Threat: a student's notebook, a kernel's messages and file names reach every report the
grader writes. JSON may carry a lone surrogate as an escape and a file name may hold
undecodable bytes: Python keeps them in a str that no UTF-8 writer, digest or report
accepts, and one such string ended a whole batch. Kernel messages also carry terminal
colour codes (Keras's errors do), which read as garbage in a web page.
"""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # CSI sequences: colours, bold, cursor moves


def encodable(text: str) -> str:
    """`text` with each lone surrogate written as its escape (`\\ud800`): still readable,
    and writable anywhere."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def encodable_tree(value: Any) -> Any:
    """`value` (parsed JSON: dicts, lists, strings, numbers) with every string and key
    `encodable`. Iterative: the depth of a student's JSON never meets Python's stack."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = encodable(item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            bad = [k for k in item if isinstance(k, str) and encodable(k) != k]
            for k in bad:
                item[encodable(k)] = item.pop(k)
            stack.extend((item, k) for k in item)
    return root[0]


def without_ansi(text: str) -> str:
    """`text` without terminal escape sequences (`\\x1b[1m` ...)."""
    return _ANSI.sub("", text) if "\x1b" in text else text
