"""The cloud commands as users run them: init flags, login, up --skip-setup, status, destroy."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.fakes import FakePaperspace, MemoryBackend
from tests.helpers import one_line_error, padlab, padlab_env

KEY = "ps-cli-secret-7d6c5b4a3f2e"


@pytest.fixture
def fake() -> Iterator[FakePaperspace]:
    with FakePaperspace(api_key=KEY, backend=MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)) as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No ambient credentials; HOME holds an ssh key for the clouds that need one."""
    home = tmp_path / "user"
    (home / ".ssh").mkdir(parents=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / ".ssh" / "id_ed25519")], check=True
    )
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "PAPERSPACE_API_KEY": "",
        "DIGITALOCEAN_TOKEN": "",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
    }


def test_init_stores_cloud_settings_in_options(home: Path, env: dict[str, str]) -> None:
    padlab(
        home,
        "init",
        "gpu",
        "--provider",
        "paperspace",
        "--machine-type",
        "A6000",
        "--disk-size",
        "100",
        **env,
    )
    text = (home / "profiles" / "gpu.toml").read_text()
    assert 'machine_type = "A6000"' in text and "disk_size = 100" in text


def test_cloud_flags_on_a_local_profile_are_one_line(home: Path, env: dict[str, str]) -> None:
    proc = padlab(home, "init", "lab", "--provider", "local", "--region", "ny2", check=False, **env)
    assert "--region only apply to cloud providers" in one_line_error(proc)


def test_login_checks_and_stores_the_key_privately(
    home: Path, env: dict[str, str], fake: FakePaperspace
) -> None:
    args = ("login", "paperspace", "--key-stdin", "--api-url", fake.url)
    bad = padlab(home, *args, input="wrong-key\n", check=False, **env)
    assert "rejected" in one_line_error(bad) and "wrong-key" not in bad.stderr
    good = padlab(home, *args, input=KEY + "\n", **env)
    assert KEY not in good.stdout + good.stderr
    path = home / "credentials" / "paperspace"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == KEY


def test_skip_setup_status_and_destroy(home: Path, env: dict[str, str], fake: FakePaperspace) -> None:
    env = {**env, "PAPERSPACE_API_KEY": KEY}
    padlab(home, "init", "gpu", "--provider", "paperspace", "--api-url", fake.url, **env)
    up = json.loads(padlab(home, "up", "gpu", "--skip-setup", "--json", **env).stdout)
    assert up["host"] and up["machine"]["state"] == "running"

    status = padlab(home, "status", "gpu", **env).stdout
    assert f"ip {up['host']}" in status and "$0.76/h (Paperspace API (usageRate))" in status
    assert "still billed while down: disk 50 GB" in status
    assert "this month: $0.00 (estimate" in status  # seconds at $0.76/h
    as_json = padlab(home, "status", "gpu", "--json", **env).stdout
    assert 0 < json.loads(as_json)["month_usd"] < 0.76  # the ledger has this run, since `up` asked for it
    assert KEY not in as_json and json.loads(as_json)["machine"]["price_source"]
    assert json.loads(as_json)["state"] == "machine-up"  # running, but never set up

    refused = padlab(home, "destroy", "gpu", check=False, **env)
    assert "--yes-really-destroy" in one_line_error(refused)
    padlab(home, "destroy", "gpu", "--yes-really-destroy", **env)
    listing = httpx.get(f"{fake.url}/machines", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert listing["items"] == []
    frozen = json.loads(padlab(home, "costs", "--json", **env).stdout)["total_usd"]
    assert frozen > 0 and json.loads(padlab(home, "costs", "--json", **env).stdout)["total_usd"] == frozen


def test_aws_login_reads_two_lines_checks_them_with_sts_and_stores_the_pair(
    home: Path, env: dict[str, str]
) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        args = ("login", "aws", "--key-stdin", "--api-url", f"http://{host}:{port}")
        half = padlab(home, *args, input="AKIAPADLABTEST000003\n", check=False, **env)
        assert "the key is empty" in one_line_error(half)  # the secret's line is missing
        padlab(home, *args, input="AKIAPADLABTEST000003\nsecret-of-the-pair\n", **env)
    finally:
        server.stop()
    path = home / "credentials" / "aws"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().split() == ["AKIAPADLABTEST000003", "secret-of-the-pair"]


def test_destroy_is_only_for_clouds(home: Path, env: dict[str, str]) -> None:
    padlab(home, "init", "lab", "--provider", "local", **env)
    proc = padlab(home, "destroy", "lab", "--yes-really-destroy", check=False, **env)
    assert "is for cloud profiles" in one_line_error(proc)


def test_two_concurrent_ups_make_one_instance(home: Path, env: dict[str, str]) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        httpx.post(
            f"http://{host}:{port}/moto-api/reset"
        )  # moto's state is per process, shared with other tests
        aws = {
            **env,
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "AKIAPADLABTEST000002",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
        padlab(
            home,
            "init",
            "ec2",
            "--provider",
            "aws",
            "--region",
            "us-east-1",
            "--image",
            "Deep Learning AMI Ubuntu*",
            **aws,
        )
        argv = [sys.executable, "-m", "padlab", "up", "ec2", "--skip-setup", "--json"]
        procs = [
            subprocess.Popen(
                argv, env=padlab_env(home, **aws), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), results
        ids = {json.loads(out)["machine"]["id"] for out, _ in results}
        ec2 = boto3.client(
            "ec2",
            region_name="us-east-1",
            endpoint_url=aws["AWS_ENDPOINT_URL"],
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        assert len(instances) == 1 and ids == {instances[0]["InstanceId"]}
    finally:
        server.stop()


def test_status_all_survives_a_cloud_without_credentials(home: Path, env: dict[str, str]) -> None:
    """One profile whose cloud refuses us shows as an error with the reason; the others still show."""
    padlab(home, "init", "lab", "--provider", "local", **env)
    padlab(home, "init", "gpu", "--provider", "paperspace", "--machine-type", "A6000", **env)
    rows = {r["name"]: r for r in json.loads(padlab(home, "status", "--all", "--json", **env).stdout)}
    assert rows["lab"]["state"] == "new"
    assert rows["gpu"]["state"] == "error"
    assert "PAPERSPACE_API_KEY" in rows["gpu"]["last_error"]


def test_init_user_flag_sets_the_login_user(home: Path, env: dict[str, str]) -> None:
    padlab(home, "init", "gpu", "--provider", "paperspace", "--user", "ubuntu", **env)
    assert 'user = "ubuntu"' in (home / "profiles" / "gpu.toml").read_text()
    proc = padlab(home, "init", "bad", "--provider", "paperspace", "--user", "Bad User", check=False, **env)
    assert "bad --user" in one_line_error(proc)
    assert not (home / "profiles" / "bad.toml").exists()
