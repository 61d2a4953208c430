"""The progress line: rows done, rows/s and the time left."""

from __future__ import annotations

import io

import pytest

from service.score import progress as progress_module
from service.score.progress import Progress


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    return now


def test_with_a_known_total_the_line_has_the_share_the_rate_and_the_time_left(clock: list[float]) -> None:
    stream = io.StringIO()
    progress = Progress("tiny v2", 1000, 200, stream, interactive=False, log_interval_s=5)
    clock[0] += 2
    progress.update(400)  # 200 rows in 2 s this run; 600 to go
    assert stream.getvalue() == ""  # not a terminal: a line every 5 s
    clock[0] += 4
    progress.update(600)
    assert stream.getvalue() == "tiny v2  [############........]  60%  600/1,000 rows  67 rows/s  0:00:06 left\n"


def test_without_a_total_the_share_is_of_the_bytes_read(clock: list[float]) -> None:
    stream = io.StringIO()
    progress = Progress("tiny v2", None, 0, stream, lambda: 0.25, interactive=True)
    clock[0] += 1
    progress.update(100)
    assert stream.getvalue() == "\r\x1b[Ktiny v2  [#####...............]  25%  100 rows  100 rows/s  0:00:03 left"
    progress.close("done")
    assert stream.getvalue().endswith("\r\x1b[Kdone\n")
