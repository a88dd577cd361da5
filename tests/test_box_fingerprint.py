"""box/setup/fingerprint.py: what makes a no-op `up` answer "unchanged", and what never may.

A workstation layout in a temporary folder (not a system box), its TLS stamp as keygen
leaves it, and the record a full run saves; each test changes one thing and checks that
the next `up` would run every step again. The testbed tests (tests/test_up_repairs.py)
break a real box; these cover what a testbed cannot: the clock passing a certificate's
renewal date with no file changed, and the money deadline moving with the clock.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from padlab.box.request import parse
from padlab.box.service import Layout
from padlab.box.setup import fingerprint, tls
from padlab.box.system import Host, login_user

PROGRAM = b"the box program's zip"


@pytest.fixture
def box(tmp_path: Path) -> dict:
    layout = Layout("fp", str(tmp_path / "prefix"), str(tmp_path / "etc"), login_user(), False)
    host = Host(sudo=False)
    req = parse(
        {
            "action": "up",
            "name": "fp",
            "prefix": layout.prefix,
            "etc": layout.etc,
            "port": 1,  # nothing listens: Jupyter's part of the fingerprint is "not running", steadily
            "ca_pem": "CA",
            "autostop": {"deadline_at": 2_000_000_000.0},
        }
    )
    host.makedirs(layout.tls_dir, mode=0o700)
    host.write(layout.key, "KEY", mode=0o600)
    host.write(layout.cert, "CERT", mode=0o644)
    sans = tls.wanted_names(req["extra_sans"])
    stamp = {
        "fingerprint": tls._fingerprint(host, layout, b"CERT", "CA", sans),
        "renew_at": time.time() + 3600,
    }
    host.write(os.path.join(layout.tls_dir, "checked.json"), json.dumps(stamp), mode=0o600)
    fingerprint.remember(host, layout, req, PROGRAM, ["a warning to repeat"], {"kind": "public"})
    return {"host": Host(sudo=False), "layout": layout, "req": req}


def unchanged(box: dict, req: dict | None = None, program: bytes = PROGRAM) -> dict | None:
    return fingerprint.unchanged(box["host"], box["layout"], req or box["req"], program)


def test_nothing_changed_answers_with_the_last_runs_warnings(box) -> None:
    kept = unchanged(box)
    assert kept is not None and kept["warnings"] == ["a warning to repeat"]
    assert kept["tls"] == {"kind": "public"}  # which certificate serves, for the no-op's report
    assert unchanged(box, dict(box["req"], password=None, check=True)) is not None  # volatile fields


def test_a_certificate_due_for_renewal_is_checked_again_though_no_file_changed(box, monkeypatch) -> None:
    later = time.time() + 7200
    monkeypatch.setattr(tls.time, "time", lambda: later)
    assert unchanged(box) is None


def test_a_file_the_run_wrote_changed_behind_its_back(box) -> None:
    cert = Path(box["layout"].cert)
    cert.write_text("CERT")  # the same bytes: only its ctime (and mtime) tell
    assert unchanged(box) is None


def test_what_differed_is_named(box) -> None:
    """`up` reports which parts differed, so a full run nobody expected says why."""
    Path(box["layout"].cert).write_text("CERT")
    why: list = []
    assert fingerprint.unchanged(box["host"], box["layout"], dict(box["req"], port=2), PROGRAM, why) is None
    assert why == ["file " + box["layout"].cert, "request"]


def test_another_request_or_program_runs_every_step(box) -> None:
    assert unchanged(box, dict(box["req"], port=2)) is None
    assert unchanged(box, program=b"another version") is None


def test_the_budget_deadline_may_move_a_little_with_the_clock_but_not_more(box) -> None:
    def moved(by: float) -> dict:
        return dict(box["req"], autostop=dict(box["req"]["autostop"], deadline_at=2_000_000_000.0 + by))

    assert unchanged(box, moved(30)) is not None
    why = dict(box["req"]["autostop"], deadline_why="the monthly budget runs out ($1.22 left at $0.50/h)")
    assert unchanged(box, dict(box["req"], autostop=why)) is not None
    assert unchanged(box, moved(3600)) is None
    assert unchanged(box, dict(box["req"], autostop=dict(box["req"]["autostop"], deadline_at=None))) is None


def test_a_record_the_jupyter_user_could_not_write_is_the_only_one_trusted(box) -> None:
    """On a system box the record is root's, in /var/lib/padlab; here, with the rest of the prefix."""
    system = Layout("fp", "/opt/padlab", "/etc/padlab", login_user(), True)
    assert fingerprint.record_path(system).startswith("/var/lib/padlab/")
    assert fingerprint.record_path(box["layout"]).startswith(box["layout"].prefix)


def test_a_cloned_course_folder_that_went_is_cloned_again(box, tmp_path) -> None:
    course = tmp_path / "notebooks" / "course22"
    course.mkdir(parents=True)
    req = dict(
        box["req"], clone="https://example.org/fastai/course22.git", root_dir=str(tmp_path / "notebooks")
    )
    fingerprint.remember(box["host"], box["layout"], req, PROGRAM, [], None)
    assert unchanged(box, req) is not None
    course.rmdir()
    assert unchanged(box, req) is None


def test_a_package_installed_or_removed_in_jupyters_venv_runs_every_step(box) -> None:
    """A notebook's `pip install jupyterlab==4.6.6` must not survive a plain `up` (the lock puts it back)."""
    site = Path(box["layout"].venv, "lib", "python3.11", "site-packages")
    site.mkdir(parents=True)
    fingerprint.remember(box["host"], box["layout"], box["req"], PROGRAM, [], None)
    assert unchanged(box) is not None
    time.sleep(0.01)
    (site / "jupyterlab-4.6.6.dist-info").mkdir()
    assert unchanged(box) is None


def test_a_kernelspec_removed_or_its_folder_swapped_for_a_link_runs_every_step(box, tmp_path) -> None:
    specs = Path(box["layout"].venv, "share", "jupyter", "kernels")
    (specs / "padlab-torch").mkdir(parents=True)
    fingerprint.remember(box["host"], box["layout"], box["req"], PROGRAM, [], None)
    assert unchanged(box) is not None
    (specs / "padlab-torch").rmdir()
    assert unchanged(box) is None
    fingerprint.remember(box["host"], box["layout"], box["req"], PROGRAM, [], None)
    specs.rename(specs.with_name("kernels.moved"))
    specs.symlink_to(tmp_path)
    assert unchanged(box) is None


def test_commands_started_early_are_the_ones_read_and_none_start_where_up_will_not_use_them(
    box, monkeypatch
) -> None:
    """`up`'s early step (fingerprint.start, run under the box's lock before bootstrap is imported)
    hands its commands to unchanged(), which then starts none of its own."""
    from padlab.box.context import Context

    started = fingerprint._start(box["host"], box["layout"], box["req"])

    def again(*args: object) -> list:
        raise AssertionError("started a second time")

    monkeypatch.setattr(fingerprint, "_start", again)
    assert fingerprint.unchanged(box["host"], box["layout"], box["req"], PROGRAM, started=started) is not None
    ctx = Context(dict(box["req"], system=True, check=True))  # `up --check` runs every step: no early answer
    assert fingerprint.start(ctx) is None
