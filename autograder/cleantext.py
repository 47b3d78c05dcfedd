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
    if isinstance(value, str):
        return encodable(value)
    # Only containers wait on the stack: strings are mended where they are found, so a
    # list of millions of strings costs no more than the list itself.
    stack = [value] if isinstance(value, (list, dict)) else []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            bad = [k for k in item if isinstance(k, str) and encodable(k) != k]
            for k in bad:
                item[encodable(k)] = item.pop(k)
            keys: Any = list(item)
        else:
            keys = range(len(item))
        for key in keys:
            child = item[key]
            if isinstance(child, str):
                item[key] = encodable(child)
            elif isinstance(child, (list, dict)):
                stack.append(child)
    return value


def without_ansi(text: str) -> str:
    """`text` without terminal escape sequences (`\\x1b[1m` ...)."""
    return _ANSI.sub("", text) if "\x1b" in text else text
