"""The panel's set-up pages (panel/lifecycle.py) in-process: each form calls the CLI's function,
bad input is one line with a fix and changes nothing, secrets are shown once or never."""

from __future__ import annotations

import os
import stat

import pytest

from tests.fakes import FakePaperspace, MemoryBackend
from tests.panel.conftest import csrf_of, sign_in

PAPERSPACE_KEY = "ps-panel-key-0123456789abcdef"


@pytest.fixture
def signed(client):
    assert sign_in(client).status_code == 303
    return client


def _post(client, path: str, data: dict, page: str = "/"):
    csrf = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


@pytest.fixture
def fake_paperspace(client):
    """The fake, its URL allowed as the panel host's admin allows one (`--allow-api-url`)."""
    with FakePaperspace(api_key=PAPERSPACE_KEY, backend=MemoryBackend(boot_seconds=0.05)) as fake:
        client.app.state.panel.allow_api_urls.append(fake.url)
        yield fake


def test_new_page_lists_every_provider_and_the_providers_own_choices(signed):
    page = signed.get("/new")
    for label in ("Paperspace", "AWS EC2", "DigitalOcean", "Lambda Cloud", "RunPod", "this machine"):
        assert label in page.text
    form = signed.get("/new/paperspace").text
    assert '<option value="A4000" selected>A4000 · $0.76/h' in form
    assert '<option value="ny2" selected>ny2</option>' in form
    assert "No Paperspace API key is stored yet" in form


def test_new_workstation_is_the_cli_init_with_autostop_budget_and_clone(signed, panel_home):
    from padlab import money, profiles

    response = _post(
        signed,
        "/new/paperspace",
        {
            "name": "gpu",
            "machine_type": "A6000",
            "region": "ams1",
            "autostop": "45m",
            "max_uptime": "8h",
            "budget": "20",
            "clone_url": "https://github.com/fastai/course22",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/#w-gpu"
    profile = profiles.load("gpu")
    assert profile.provider == "paperspace"
    assert profile.options["machine_type"] == "A6000" and profile.options["region"] == "ams1"
    assert (profile.autostop, profile.max_uptime) == ("45m", "8h")
    assert profile.clone == "https://github.com/fastai/course22"
    assert money.budgets()["gpu"] == 20
    assert "gpu" in signed.get("/").text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "gpu", "autostop": "soon"}, "as a duration"),
        ({"name": "gpu", "budget": "lots"}, "budget"),
        ({"name": "lab"}, "already exists"),
        ({"name": ""}, "needs a profile name"),
    ],
)
def test_bad_new_workstation_is_one_line_and_saves_nothing(signed, panel_home, data, message):
    from padlab import money, profiles

    response = _post(signed, "/new/paperspace", data)
    assert response.status_code == 400
    assert message in response.text.lower() or message in response.text
    assert "Fix:" in response.text and "Traceback" not in response.text
    assert profiles.names() == ["lab"]
    assert money.budgets() == {}


def test_a_form_without_the_sessions_csrf_token_is_refused(signed, panel_home):
    from padlab import profiles

    response = signed.post("/new/local", data={"csrf": "forged", "name": "x"}, follow_redirects=False)
    assert response.status_code == 403
    assert profiles.names() == ["lab"]


def test_signed_out_pages_go_to_sign_in(client):
    for path in ("/new", "/keys", "/w/lab/kernels", "/w/lab/get", "/w/lab/destroy", "/w/lab/password"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_provider_key_is_checked_stored_0600_and_never_shown(signed, panel_home, fake_paperspace):
    from padlab.providers import credentials

    wrong = _post(
        signed, "/keys/provider/paperspace", {"part0": "not-the-key", "api_url": fake_paperspace.url}, "/keys"
    )
    assert wrong.status_code == 400 and "rejected" in wrong.text
    assert credentials.read_stored("paperspace") is None

    ok = _post(
        signed,
        "/keys/provider/paperspace",
        {"part0": PAPERSPACE_KEY, "api_url": fake_paperspace.url},
        "/keys",
    )
    assert ok.status_code == 200 and "It is not shown again" in ok.text
    path = credentials.stored_path("paperspace")
    assert path.read_text().strip() == PAPERSPACE_KEY
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    page = signed.get("/keys").text
    assert PAPERSPACE_KEY not in ok.text and PAPERSPACE_KEY not in page
    assert PAPERSPACE_KEY[-4:] not in page
    assert "Replace the Paperspace key" in page


def test_an_empty_provider_key_is_refused(signed, panel_home):
    from padlab.providers import credentials

    response = _post(signed, "/keys/provider/aws", {"part0": "AKIA", "part1": " "}, "/keys")
    assert response.status_code == 400 and "the key is empty" in response.text
    assert credentials.read_stored("aws") is None


def test_api_tokens_are_made_rotated_and_revoked(signed, panel_home):
    made = _post(signed, "/keys/tokens", {"label": "shortcuts"}, "/keys")
    token = made.text.split('data-role="token">')[1].split("<")[0]
    assert token.startswith("padlab_")
    assert token not in signed.get("/keys").text
    auth = {"Authorization": f"Bearer {token}"}
    assert signed.get("/api/workstations", headers=auth).status_code == 200

    rotated = _post(signed, "/keys/tokens/shortcuts/rotate", {}, "/keys")
    new = rotated.text.split('data-role="token">')[1].split("<")[0]
    assert new != token and "the old one no longer works" in rotated.text
    assert signed.get("/api/workstations", headers=auth).status_code == 401
    new_auth = {"Authorization": f"Bearer {new}"}
    assert signed.get("/api/workstations", headers=new_auth).status_code == 200

    revoked = _post(signed, "/keys/tokens/shortcuts/revoke", {}, "/keys")
    assert "revoked" in revoked.text
    assert signed.get("/api/workstations", headers=new_auth).status_code == 401
    unknown = _post(signed, "/keys/tokens/shortcuts/rotate", {}, "/keys")
    assert unknown.status_code == 400 and "no token labelled" in unknown.text


def test_a_first_start_asks_for_the_password_and_checks_a_typed_one(signed, panel_home):
    from padlab import state

    start = _post(signed, "/w/lab/start", {})
    assert start.status_code == 303 and start.headers["location"] == "/w/lab/password"
    page = signed.get("/w/lab/password").text
    assert "Generate a password and start" in page
    differ = _post(
        signed,
        "/w/lab/password",
        {"how": "typed", "password": "a" * 14, "repeat": "b" * 14},
        "/w/lab/password",
    )
    assert differ.status_code == 400 and "the two passwords differ" in differ.text
    short = _post(
        signed, "/w/lab/password", {"how": "typed", "password": "x", "repeat": "x"}, "/w/lab/password"
    )
    assert short.status_code == 400 and "Fix:" in short.text
    assert signed.app.state.panel.jobs.get("lab") is None
    assert state.load("lab").get("phase") in (None, "new")


def test_destroy_needs_the_name_typed(signed, panel_home):
    from padlab import profiles

    wrong = _post(signed, "/w/lab/destroy", {"confirm": "lap"}, "/w/lab/destroy")
    assert wrong.status_code == 400 and "the name did not match; nothing was deleted" in wrong.text
    local = _post(signed, "/w/lab/destroy", {"confirm": " lab "}, "/w/lab/destroy")
    assert local.status_code == 400 and "has no machine for padlab to delete" in local.text
    assert profiles.names() == ["lab"] and signed.app.state.panel.jobs.get("lab") is None


def test_get_and_kernels_refuse_bad_input_before_any_job(signed, panel_home):
    bad_url = _post(signed, "/w/lab/get", {"url": "ftp://example.com/x.tgz", "to": "datasets"}, "/w/lab/get")
    assert bad_url.status_code == 400 and "is not an http(s) URL" in bad_url.text
    escape = _post(signed, "/w/lab/get", {"url": "https://e.com/x.tgz", "to": "../up"}, "/w/lab/get")
    assert escape.status_code == 400 and "must stay inside the notebook folder" in escape.text
    empty = _post(signed, "/w/lab/kernels", {"kernel": "fastai", "packages": ""}, "/w/lab/kernels")
    assert empty.status_code == 400 and "nothing to install" in empty.text
    assert signed.app.state.panel.jobs.get("lab") is None


def test_a_download_job_streams_its_stages_and_progress(signed, panel_home):
    """The job page and its event stream, for a job that reports a download's bytes."""
    panel = signed.app.state.panel

    def work(stage, job):
        stage("downloading data.tgz")
        job.note({"bytes": 500, "total": 1000, "note": None})
        stage("saved")

    job = panel.jobs.start("lab", "download", work, with_job=True)
    job.since(10, 30.0)
    while not job.done:
        job.since(len(job.stages), 5.0)
    events = signed.get("/w/lab/events").text
    assert 'event: stage\ndata: "downloading data.tgz"' in events
    assert 'event: progress\ndata: {"bytes": 500, "total": 1000, "note": null}' in events
    page = signed.get("/w/lab/job").text
    assert "500 of 1000 bytes" in page and "Done." in page


def test_destroy_after_the_typed_name_deletes_the_cloud_machine(
    signed, panel_home, fake_paperspace, monkeypatch
):
    """The same machines.destroy as `padlab destroy`: the fake's machine is gone, the profile stays."""
    import httpx

    from padlab import profiles

    monkeypatch.setenv("PAPERSPACE_API_KEY", PAPERSPACE_KEY)
    made = _post(signed, "/new/paperspace", {"name": "gpu", "api_url": fake_paperspace.url})
    assert made.status_code == 303
    auth = {"Authorization": f"Bearer {PAPERSPACE_KEY}"}
    with httpx.Client(base_url=fake_paperspace.url, headers=auth) as api:
        body = {
            "name": "padlab-gpu",
            "machineType": "A4000",
            "templateId": "t0nspur5",
            "diskSize": 50,
            "region": "ny2",
        }
        assert api.post("/machines", json=body).status_code == 200
        response = _post(signed, "/w/gpu/destroy", {"confirm": "gpu"}, "/w/gpu/destroy")
        assert response.status_code == 303 and response.headers["location"] == "/w/gpu/job"
        job = signed.app.state.panel.jobs.get("gpu")
        while not job.done:
            job.since(len(job.stages), 5.0)
        assert job.error is None, job.error
        assert api.get("/machines").json()["items"] == []
    assert "gpu" in profiles.names()
    assert "Done." in signed.get("/w/gpu/job").text


def test_new_workstation_form_offers_the_providers_own_list_once_its_key_is_stored(
    signed, panel_home, monkeypatch
):
    from padlab import onboard
    from tests.fakes.lambdacloud import FakeLambda

    with FakeLambda(api_key="lam-panel-key") as lam:
        monkeypatch.setenv("PADLAB_LAMBDA_API_URL", lam.url)
        before = signed.get("/new/lambda").text
        assert "Lambda API (instance-types)" not in before  # no key yet: padlab's list
        onboard.store_key("lambda", ["lam-panel-key"], verify=False)
        page = signed.get("/new/lambda").text
    assert "Prices: Lambda API (instance-types)" in page
    assert '<option value="gpu_8x_a100_80gb_sxm4" >gpu_8x_a100_80gb_sxm4 · $14.32/h</option>' in page


def test_a_session_cannot_point_the_stored_key_at_another_api(signed, panel_home, monkeypatch):
    """The stored key goes only to the provider's own API or one the host's admin allowed:
    a session that types another URL (its own server) is refused, and nothing is saved."""
    from padlab import profiles
    from padlab.providers import credentials

    credentials.store("paperspace", PAPERSPACE_KEY)
    with (
        FakePaperspace(api_key=PAPERSPACE_KEY, backend=MemoryBackend()) as own,
        FakePaperspace(api_key="thief", backend=MemoryBackend()) as thief,
    ):
        monkeypatch.setenv("PADLAB_PAPERSPACE_API_URL", own.url)  # the form's lists: never a real cloud
        new = _post(signed, "/new/paperspace", {"name": "gpu", "api_url": thief.url})
        assert new.status_code == 400, new.text
        assert "only to Paperspace&#39;s own API" in new.text and "--allow-api-url" in new.text
        assert "gpu" not in profiles.names()
        check = _post(signed, "/keys/provider/paperspace", {"part0": "typed", "api_url": thief.url}, "/keys")
        assert check.status_code == 400 and "--allow-api-url" in check.text
        assert thief.requests == []
        assert credentials.read_stored("paperspace").value == PAPERSPACE_KEY  # unchanged
        official = _post(
            signed, "/new/paperspace", {"name": "ps1", "api_url": "https://api.paperspace.com/v1/"}
        )
        assert official.status_code == 303
        signed.app.state.panel.allow_api_urls = [thief.url]  # as `--allow-api-url` at install
        allowed = _post(signed, "/new/paperspace", {"name": "ps2", "api_url": thief.url + "/"})
        assert allowed.status_code == 303
        assert profiles.load("ps2").options["api_url"] == thief.url


def test_the_panel_makes_its_own_ssh_key_once_and_new_workstations_use_it(signed, panel_home):
    """An iPad has no ssh key to give: the panel's own (ed25519, 0600, in its home), shown on
    the Keys page to add in the provider's console, and the identity of what it creates."""
    from padlab import paths, profiles
    from padlab.providers import cloud

    page = signed.get("/keys").text
    key = paths.data_dir() / "panel" / "ssh" / "id_ed25519"
    public = key.with_name("id_ed25519.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ") and public in page
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    signed.get("/keys")
    assert key.with_name("id_ed25519.pub").read_text().strip() == public  # made once

    assert _post(signed, "/new/paperspace", {"name": "gpu"}).status_code == 303
    profile = profiles.load("gpu")
    assert profile.identity == str(key)
    assert cloud.public_key(profile)[0] == public  # what DigitalOcean, Lambda, RunPod and AWS are given
    other = panel_home / "my-key"
    other.write_text(key.read_text())
    other.with_name("my-key.pub").write_text(public + "\n")
    typed = _post(signed, "/new/paperspace", {"name": "mine", "identity": str(other)})
    assert typed.status_code == 303, typed.text
    assert profiles.load("mine").identity == str(other)  # a typed key still wins


def _key_pair(folder, name: str = "id_ed25519") -> tuple[object, str]:
    """An unencrypted ed25519 pair in ``folder`` (private 0600, .pub beside it): (path, public line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.with_name(name + ".pub").write_text(public.decode() + " me@ipad\n")
    return path, public.decode()


def test_the_ssh_key_field_takes_only_a_key_pair_from_ssh_or_padlabs_home(
    signed, panel_home, tmp_path, monkeypatch
):
    """A typed path is read on the panel host and its .pub may go to a cloud: /etc/shadow, a key
    outside ~/.ssh and padlab's home (or a link out of them), a file that is no key, or a key whose
    .pub is another's are refused in one line, and nothing is saved."""
    from padlab import profiles

    user_home = tmp_path / "panel-user"
    monkeypatch.setenv("HOME", str(user_home))
    ssh = user_home / ".ssh"
    good, _ = _key_pair(ssh)
    outside, _ = _key_pair(tmp_path / "elsewhere")
    (ssh / "linked").symlink_to(outside)
    (ssh / "linked.pub").write_text(outside.with_name("id_ed25519.pub").read_text())
    (ssh / "notes").write_text("not a key\n")
    (ssh / "notes.pub").write_text("ssh-ed25519 AAAA x\n")
    other, _ = _key_pair(ssh, "other")
    mismatched = ssh / "mismatched"
    mismatched.write_bytes(other.read_bytes())
    _, stranger = _key_pair(tmp_path / "stranger")
    (ssh / "mismatched.pub").write_text(stranger + "\n")
    lonely = ssh / "lonely"
    lonely.write_bytes(good.read_bytes())
    refused = {
        "/etc/shadow": "only from",
        str(outside): "only from",
        str(ssh / "linked"): "only from",
        "id_ed25519": "full path",
        str(ssh / "nothing-here"): "no ssh key file",
        str(ssh / "notes"): "not a private ssh key",
        str(mismatched): "is not the public half",
        str(lonely): "no such file: its public half",
    }
    for typed, message in refused.items():
        response = _post(signed, "/new/paperspace", {"name": "gpu", "identity": typed})
        assert response.status_code == 400, typed
        assert message in response.text and "Fix:" in response.text, (typed, response.text)
        assert "Traceback" not in response.text and "root:" not in response.text
        assert "gpu" not in profiles.names()
    made = _post(signed, "/new/paperspace", {"name": "gpu", "identity": "~/.ssh/id_ed25519"})
    assert made.status_code == 303, made.text
    assert profiles.load("gpu").identity == str(good)


def test_the_form_reads_the_providers_own_list_where_the_key_was_checked(signed, panel_home, fake_paperspace):
    """A key checked against an allowed API URL on the Keys page: the new-workstation form lists
    that API's machine types (Paperspace's template, not padlab's table)."""
    stored = _post(
        signed,
        "/keys/provider/paperspace",
        {"part0": PAPERSPACE_KEY, "api_url": fake_paperspace.url},
        "/keys",
    )
    assert stored.status_code == 200, stored.text
    page = signed.get("/new/paperspace").text
    assert '<option value="C5" >C5</option>' in page and 'value="P4000"' not in page
    assert "machine types and regions from Paperspace&#39;s API" in page
    assert 'data-role="catalog-note"' not in page
    assert any(r.path == "/v1/os-templates" for r in fake_paperspace.requests)
