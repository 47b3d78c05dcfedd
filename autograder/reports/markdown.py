"""Student markdown to HTML that is safe to open: raw HTML escaped, no remote images.

markdown-it-py with HTML disabled escapes every tag a student writes, and its link
validation refuses javascript:, vbscript: and file: links. Images are turned off: a
remote image in an answer would call out when a TA opens the page.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").disable("image")
    )


def render_markdown(text: str) -> str:
    """HTML for untrusted markdown (to be placed in a page with a strict CSP)."""
    return _parser().render(text)
