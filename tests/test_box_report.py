"""box/report.py: the box's questions to the client are bounded."""

from __future__ import annotations

import os
import sys

from padlab.box import report


def test_a_question_nobody_answers_gives_up_after_its_limit(monkeypatch, capsys) -> None:
    """A client that never answers costs `up` one clear failure, not a box waiting forever."""
    read, write = os.pipe()
    try:
        with os.fdopen(read, "r") as never_answered:
            monkeypatch.setattr(sys, "stdin", never_answered)
            monkeypatch.setattr(report, "ASK_TIMEOUT_S", 0.2)
            assert report.Report().ask("sign", csr="x") == {}
    finally:
        os.close(write)
    assert '"ask": "sign"' in capsys.readouterr().err
