"""Lambda Cloud end to end: the fake API runs testbed machines, and `down` is a terminate.

The instance's disk goes with it; the filesystem (a host directory bind-mounted at
its mount point, as Lambda's NFS filesystem is) outlives it. One machine at a time:
up -> login -> notebook saved -> down (terminate) -> up on a new instance: the
notebook, the venv and Jupyter's password are still there. Capacity runs out first,
so the one-line refusal and its recovery are covered on the way. Last, autostop: the
idle box terminates itself with its own key, within the limit plus a minute. The two `up`
times, less the machine's boot, are printed (-s) for the issue's figures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.fakes.lambdacloud import FakeLambda
from tests.fakes.testbed_backend import TestbedBackend
from tests.helpers import PASSWORD, one_line_error, padlab
from tests.test_cloud_e2e import (
    MARKER,
    NOTEBOOK,
    changed,
    eventually,
    host_of,
    login_and_run,
    padlab_json,
    read_notebook,
    write_notebook,
)

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

KEY = "secret_lambda-e2e_7a6b5c4d3e2f"
BOX_KEY = "secret_lambda-e2e-box_1f2e3d4c"  # the box's own, for autostop's terminate
LIMIT = 60  # autostop 1m
ENV = {"LAMBDA_API_KEY": KEY}


@pytest.fixture
def lambda_cloud(testbed, make_client) -> Iterator[tuple[FakeLambda, TestbedBackend]]:
    backend = TestbedBackend(testbed, login_user="ubuntu")  # Lambda's image: ubuntu, passwordless sudo
    # The API listens on a testbed host address, which this host and the boxes both reach: the
    # box's agent calls it to terminate itself.
    where = make_client().net.host_ip
    with backend, FakeLambda(api_key=KEY, backend=backend, launch_interval=12, host=where) as fake:
        fake.extra_keys = {BOX_KEY}
        yield fake, backend


def test_lambda_terminate_keeps_the_notebook_on_the_filesystem(lambda_cloud, testbed, tmp_path) -> None:
    fake, backend = lambda_cloud
    home = tmp_path / "padlab-home"
    padlab(home, "init", "lam", "--provider", "lambda", "--api-url", fake.url, "--machine-type", "a10,a100",
           "--identity", str(testbed.identity), **ENV)  # fmt: skip

    # No capacity for the allowed types in the filesystem's region: one line, with what there is.
    for name in fake.capacity:
        fake.capacity[name] = {"us-west-1"} if name == "gpu_1x_a10" else set()
    fake.capacity["gpu_1x_h100_pcie"] = {"us-east-1"}
    refused = padlab(home, "up", "lam", "--password-stdin", input=PASSWORD + "\n", check=False, **ENV)
    line = one_line_error(refused)
    assert "no capacity for gpu_1x_a10, gpu_1x_a100_sxm4" in line and "gpu_1x_h100_pcie ($2.49/h)" in line
    assert "gpu_1x_a10 in us-west-1" in line
    assert backend.machine_ids() == []

    # Capacity for the second choice comes back: the same command goes on.
    fake.capacity["gpu_1x_a100_sxm4"] = {"us-east-1"}
    began = time.monotonic()
    proc = padlab(home, "up", "lam", "--password-stdin", "--json", input=PASSWORD + "\n", **ENV)
    first_up = time.monotonic() - began - backend.boots[-1]
    card = json.loads(proc.stdout)
    assert "launching gpu_1x_a100_sxm4" in proc.stderr and "$1.29/h" in proc.stderr
    [first_id] = backend.machine_ids()
    first = backend.machine(first_id)
    assert host_of(card) == first.ip and card["ssh"] == f"ssh ubuntu@{first.ip}"
    assert login_and_run(card) == "42"
    write_notebook(card)
    [fs_id] = fake.filesystem_ids()
    volume = backend.volume_path(fs_id)
    assert (volume / "notebooks" / NOTEBOOK).is_file()  # on the filesystem, not the instance's disk
    assert (volume / "padlab" / "opt" / "venv" / "bin" / "jupyter").exists()

    padlab(home, "down", "lam", **ENV)
    eventually(lambda: not backend.machine_ids(), "the terminated instance's machine to be destroyed")
    assert not first.dir.exists()
    status = padlab_json(home, "status", "lam", **ENV)
    assert status["state"] == "stopped" and status["machine"]["state"] == "off"
    billed = status["machine"]["billed_while_down"]
    assert billed.startswith("filesystem padlab-lam in us-east-1: ") and "/GB-month" in billed, billed

    # Up again: a new instance, the same filesystem. No new venv, no password needed.
    began = time.monotonic()
    again = padlab_json(home, "up", "lam", **ENV)
    second_up = time.monotonic() - began - backend.boots[-1]
    [second_id] = backend.machine_ids()
    assert second_id != first_id
    assert "python-env" not in changed(again)  # the venv was on the filesystem
    assert read_notebook(again) == MARKER
    assert login_and_run(again) == "42"
    costs = padlab_json(home, "costs", "lam", **ENV)["profiles"]["lam"]
    assert costs["down_hours"] > 0, costs  # the filesystem's time while down is in the ledger
    assert costs["hours"] > 0 and costs["unpriced_hours"] == 0, costs  # the run, at the API's price

    # Autostop: idle past the limit, the box terminates its own instance with its own key.
    login = ("login", "lambda", "--autostop-token", "--key-stdin", "--api-url", fake.url)
    padlab(home, *login, input=BOX_KEY + "\n", **ENV)
    padlab(home, "autostop", "lam", "1m", **ENV)
    idle_from = time.monotonic()  # the box has been idle since the last login, a little earlier
    second = backend.machine(second_id)
    assert second.exec(["cat", "/var/lib/padlab/agent-lam/lambda-key"]).stdout.strip() == BOX_KEY
    eventually(lambda: not backend.machine_ids(), "the box to terminate itself", timeout=LIMIT + 60 + 30)
    stopped_after = time.monotonic() - idle_from
    [call] = [r for r in fake.requests if r.path.endswith("/instance-operations/terminate")][-1:]
    assert call.headers["authorization"] == f"Bearer {BOX_KEY}"  # the box's key, not padlab's
    assert stopped_after <= LIMIT + 60, stopped_after
    status = padlab_json(home, "status", "lam", **ENV)
    assert status["machine"]["state"] == "off"
    assert status["stop_reason"].startswith("instance terminated outside `padlab down`: by autostop")
    print(f"\nlambda up, boot excluded: first {first_up:.1f}s, second {second_up:.1f}s")
    print(f"second up redid: {sorted(changed(again))}; while down: {billed}")
    print(f"autostop: terminated by the box {stopped_after:.0f}s after `padlab autostop 1m`")
