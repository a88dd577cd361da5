"""padlab's CA key stays off a public panel unless it is allowed (issue 21, docs/panel.md).

A panel serving a public certificate starts workstations through workstation.up, the function
its start button runs (panel/actions.py), with the policy panel/server.keep_ca_off sets as it
starts. One module-scoped testbed box with `--tls letsencrypt` against pebble on the host's end
of its link (tests/test_acme_testbed.py), and two panel homes, in file order:

1. pebble down, so ACME fails: without permission `up` fails with one line and makes no CA;
   with --allow-padlab-ca it falls back to padlab's CA, made then;
2. pebble up, a fresh home: the box (which had padlab's CA's certificate) gets a pebble
   certificate, no CA key is made on the panel, a second `up` changes nothing, `status` sees
   it running and `passwd` works, all without padlab's CA.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, padlab
from tests.test_acme_testbed import Pebble, served

pytestmark = [
    pytest.mark.testbed,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not shutil.which("pebble") and not os.environ.get("CI"), reason="needs Debian's pebble"
    ),
]


@pytest.fixture(scope="module")
def box(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"caoff{os.getpid() % 100000}")
    work = tmp_path_factory.mktemp("caoff")
    pebble = Pebble(machine.ip.rsplit(".", 1)[0] + ".1", work)
    bundle = work / "acme-ca.pem"  # the listener's CA now; pebble's issuing root is added once it runs
    bundle.write_bytes(pebble.listener_ca.read_bytes())
    homes = {}
    for which in ("refused", "fresh"):
        homes[which] = work / which
        padlab(homes[which], "init", "box", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
               "--identity", str(machine.identity), "--firewall", "on", "--autostop", "2h",
               "--tls", "letsencrypt", "--acme-directory", pebble.directory, "--acme-ca", str(bundle))  # fmt: skip
    yield {"machine": machine, "pebble": pebble, "bundle": bundle, "homes": homes}
    pebble.stop()
    machine.destroy()


def panel_up(home: Path, monkeypatch: pytest.MonkeyPatch, allowed: bool, password: str | None = None) -> dict:
    """`up` as a panel with a public certificate runs it (its start button: workstation.up)."""
    from padlab import profiles, tls, workstation
    from padlab.panel import server

    monkeypatch.setenv("PADLAB_HOME", str(home))
    server.keep_ca_off({"ca_sha256": None, "allow_padlab_ca": allowed})  # what `padlab panel` sets
    try:
        return workstation.up(profiles.load("box"), password)
    finally:
        tls.keep_ca_off(False)  # the CLI's default, for the tests after these in this process


def test_acme_failing_on_a_public_panel_makes_no_ca_unless_allowed(box, monkeypatch) -> None:
    from padlab import tls
    from padlab.errors import PadlabError

    home = box["homes"]["refused"]
    with pytest.raises(PadlabError) as refused:
        panel_up(home, monkeypatch, allowed=False, password=PASSWORD)
    line = str(refused.value)
    assert "\n" not in line and "keeps padlab's CA key off" in line, line
    assert "cannot reach the ACME server" in line, line  # why the box got no public certificate
    assert "port 80" in refused.value.fix and "--allow-padlab-ca" in refused.value.fix
    assert not tls.ca_key_path().exists() and not tls.ca_cert_path().exists()

    card = panel_up(home, monkeypatch, allowed=True, password=PASSWORD)
    assert card["tls_line"] == "padlab's CA: cannot reach the ACME server: Connection refused", card
    assert tls.ca_key_path().exists()
    served(box["machine"].ip, tls.ca_cert_path())  # padlab's CA, made now, verifies what Jupyter serves
    # The CA now exists, so it is used (also unallowed); the request carries it: a no-op `up`.
    again = panel_up(home, monkeypatch, allowed=False)
    assert [s["name"] for s in again["steps"]] == ["unchanged"], again["steps"]


def test_a_public_panel_gets_the_box_a_pebble_certificate_without_a_ca(box, monkeypatch) -> None:
    from padlab import tls, workstation

    root = box["pebble"].start()
    box["bundle"].write_bytes(box["pebble"].listener_ca.read_bytes() + root.read_bytes())
    home = box["homes"]["fresh"]  # a panel that never made padlab's CA; the box has its old certificate
    card = panel_up(home, monkeypatch, allowed=False)
    assert card["public_cert"] and card["tls_line"].endswith("no profile needed"), card["tls_line"]
    digest, _ = served(box["machine"].ip, root)  # pebble's root alone verifies it
    assert digest == card["cert_sha256"]
    assert not tls.ca_key_path().exists() and not tls.ca_cert_path().exists()

    again = panel_up(home, monkeypatch, allowed=False)  # a no-op `up`: the fingerprint, without a CA
    assert not again["changed"], [s for s in again["steps"] if s["changed"]]
    assert [s["name"] for s in again["steps"]] == ["unchanged"], again["steps"]
    assert again["cert_sha256"] == digest and again["public_cert"]
    from padlab import profiles

    assert workstation.status(profiles.load("box"))["state"] == "running"  # verified without padlab's CA
    # A new Jupyter password: the box waits for Jupyter by the public certificate's pin, not a CA.
    workstation.passwd(profiles.load("box"), PASSWORD + "-2", generated=False)
    assert not tls.ca_key_path().exists()
