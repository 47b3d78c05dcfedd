"""Student text made safe to store and show: lone surrogates, terminal escapes."""

from __future__ import annotations

from autograder import cleantext


def test_encodable_writes_lone_surrogates_as_escapes():
    assert cleantext.encodable("plain é") == "plain é"
    assert cleantext.encodable("a\ud800b") == "a\\ud800b"
    tree = {"k\udcff": ["x\ud800", {"y": "\udfff"}, 3, None], "ok": "fine"}
    assert cleantext.encodable_tree(tree) == {
        "k\\udcff": ["x\\ud800", {"y": "\\udfff"}, 3, None],
        "ok": "fine",
    }
    deep: list = []
    for _ in range(100_000):  # deeper than Python's stack: walked without recursion
        deep = [deep, "\ud800"]
    assert cleantext.encodable_tree(deep)[1] == "\\ud800"


def test_without_ansi_drops_terminal_escapes_only():
    keras_error = "\x1b[1mInvalid input shape\x1b[0m: expected (None, 28, 28, 1)"
    assert cleantext.without_ansi(keras_error) == "Invalid input shape: expected (None, 28, 28, 1)"
    assert cleantext.without_ansi("a [1m] b") == "a [1m] b"
