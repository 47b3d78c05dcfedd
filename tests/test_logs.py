"""The package's logging: console level, and one submission's log captured as text."""

from __future__ import annotations

import logging

import pytest

from autograder import logs


@pytest.fixture
def clean_logger():
    logger = logging.getLogger(logs.LOGGER)
    saved = (logger.level, list(logger.handlers))
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]


def test_configure_installs_one_console_handler(clean_logger):
    logs.configure("info")
    logs.configure(logging.DEBUG)
    consoles = [h for h in clean_logger.handlers if isinstance(h, logs._Console)]
    assert len(consoles) == 1 and consoles[0].level == logging.DEBUG
    assert logs.has_console() and logs.console_level() == logging.DEBUG
    with pytest.raises(ValueError, match="unknown log level"):
        logs.configure("LOUD")


def test_capture_submission_collects_info_even_when_the_console_is_quiet(clean_logger):
    logs.configure("WARNING")
    log = logs.get("autograder.session")
    with logs.capture_submission() as captured:
        log.info("kernel started (cold) in %.2f s", 0.5)
        log.debug("not kept")
    log.info("after: not kept")
    text = captured.text()
    assert "INFO    kernel started (cold) in 0.50 s" in text
    assert "not kept" not in text
    assert clean_logger.level == logging.WARNING
    assert not [h for h in clean_logger.handlers if isinstance(h, logs.SubmissionLog)]


def test_a_flood_of_records_is_capped(clean_logger, monkeypatch):
    monkeypatch.setattr(logs, "MAX_SUBMISSION_LINES", 3)
    with logs.capture_submission() as captured:
        for i in range(10):
            logs.get("x").warning("line %d", i)
    assert captured.text().splitlines()[-1] == "... 7 more lines left out"


def test_console_lines_name_the_student_being_graded(clean_logger, capsys):
    logs.configure("INFO")
    with logs.capture_submission("alice"):
        logs.get("x").info("kernel started")
    logs.get("x").info("batch done")
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == ["autograder: [alice] kernel started", "autograder: batch done"]


def test_configure_again_after_the_old_stderr_was_closed(clean_logger, monkeypatch):
    """As with click's CliRunner: each run has its own stderr, closed afterwards."""
    import io

    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logs.configure("INFO")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logs.configure("INFO")  # must not touch the closed stream
    logs.get("x").info("hello")
    assert second.getvalue() == "autograder: hello\n"
