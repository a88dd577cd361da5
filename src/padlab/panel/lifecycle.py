"""The pages that make the panel enough on its own: a new workstation, keys, the first start's
password, kernels, downloads, destroy, and a page that follows any of these as it runs.

Every form calls the function the CLI calls (onboard, kernels, files, machines, workstation,
the panel's token store); long ones run as jobs (jobs.py) whose stages the page streams.
A secret entered here is stored and never shown again; one made here is shown once.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from padlab import registry
from padlab.errors import PadlabError
from padlab.panel import actions, audit, store
from padlab.panel.web import Workstation, client, error_page, panel_of, render, signed_in, workstation_page

# The new-workstation form's fields that go to onboard.create_profile as they are typed.
NEW_FIELDS = ("host", "identity", "autostop", "max_uptime", "clone_url")
CLOUD_FIELDS = ("machine_type", "region", "api_url")


def _field(form: Any, key: str) -> str | None:
    value = str(form.get(key, "") or "").strip()
    return value or None


# --- a new workstation ------------------------------------------------------------------------


@signed_in
async def new_page(request: Request) -> Response:
    from padlab import onboard

    choices = [onboard.catalog(name) for name in registry.NAMES]
    return render(request, "new.html", providers=choices)


def official_api_url(provider: str) -> str | None:
    """The provider's public API (None: its SDK's own endpoint, AWS's)."""
    from importlib import import_module

    url = getattr(import_module(registry.PROVIDERS[provider].module), "DEFAULT_URL", None)
    return str(url).rstrip("/") if url else None


def checked_api_url(panel: Any, provider: str, value: str | None) -> str | None:
    """A typed API URL, only where it is the provider's official one or one the panel host's admin
    allowed (`padlab panel install --allow-api-url`): a session must not be able to make padlab
    send the stored key to a server of its choosing."""
    if not value:
        return None
    url = value.rstrip("/")
    if url == official_api_url(provider) or url in (getattr(panel, "allow_api_urls", None) or ()):
        return url
    label = registry.PROVIDERS[provider].label
    raise PadlabError(
        f"the panel sends the {label} key only to {label}'s own API, not to {url}",
        "leave the API URL empty; the panel host's admin can allow another one with "
        "`padlab panel install --allow-api-url URL`",
    )


def _create(form: Any, provider: str, panel: Any = None) -> dict[str, Any]:
    """Check everything (the budget too) before the profile is saved: nothing half-done.

    No ssh key given: the panel's own (sshkey.py), made the first time it is needed; one typed must
    be a key pair in the panel user's ~/.ssh or padlab home (sshkey.checked_identity)."""
    from padlab import money, onboard

    budget = _field(form, "budget")
    amount = money.parse_amount(budget) if budget else None
    fields = {key: _field(form, key) for key in NEW_FIELDS}
    cloud = {key: _field(form, key) for key in CLOUD_FIELDS} if registry.PROVIDERS[provider].cloud else None
    if cloud is not None:
        cloud["api_url"] = checked_api_url(panel, provider, cloud.get("api_url"))
    from padlab.panel import sshkey

    if fields["identity"]:
        # A path typed here is read on the panel host: only a real key pair from the allowed places.
        fields["identity"] = sshkey.checked_identity(fields["identity"])
    elif cloud is not None or registry.PROVIDERS[provider].needs_host:
        fields["identity"], _ = sshkey.ensure()
    name = _field(form, "name")
    profile, _ = onboard.create_profile(name, provider, cloud=cloud, **fields)
    if amount is not None:
        money.set_budget(profile.name, amount)
    return {"name": profile.name, "budget": amount}


@signed_in
async def new_provider_page(request: Request) -> Response:
    from padlab import onboard

    provider = request.path_params["provider"]
    if provider not in registry.PROVIDERS:
        return error_page(request, 404, f"no provider named {provider!r}", "pick one on /new")
    key = onboard.key_status(provider) if registry.PROVIDERS[provider].cloud else None
    # The provider's own list where it has one, once its key is stored, from the API the key was
    # checked against while that API is still one the panel may send the key to.
    live = bool(key and key["stored"])
    try:
        key_url = checked_api_url(
            panel_of(request), provider, onboard.key_api_url(provider) if live else None
        )
    except PadlabError:
        key_url = None
    cat = await run_in_threadpool(onboard.catalog, provider, live, key_url)
    if request.method == "POST":
        form = request.state.form
        try:
            made = await run_in_threadpool(_create, form, provider, panel_of(request))
        except PadlabError as exc:
            audit.record("new", client(request), ok=False, provider=provider, error=str(exc))
            values = {k: str(v) for k, v in form.items() if k != "csrf"}
            return render(
                request, "new_provider.html", status_code=400, cat=cat, key=key, values=values, error=exc
            )
        audit.record("new", client(request), workstation=made["name"], provider=provider)
        panel_of(request).workstations.forget(made["name"])
        return RedirectResponse(f"/#w-{made['name']}", status_code=303)
    values = {
        "machine_type": cat["default_machine_type"] or "",
        "region": cat["default_region"] or "",
        "autostop": "",
    }
    return render(request, "new_provider.html", cat=cat, key=key, values=values, error=None)


# --- keys: the providers' API keys and the panel's API tokens ----------------------------------


def _keys_context() -> dict[str, Any]:
    from padlab import onboard
    from padlab.panel import sshkey

    _, public = sshkey.ensure()
    return {
        "providers": [onboard.key_status(name) for name in registry.CLOUDS],
        "tokens": store.list_tokens(),
        "ssh_public_key": public,
    }


async def _keys(request: Request, status_code: int = 200, **extra: Any) -> Response:
    context = await run_in_threadpool(_keys_context)
    context.setdefault("error", None)
    context.setdefault("shown", None)
    context.setdefault("saved", None)
    context.update(extra)
    return render(request, "keys.html", status_code=status_code, **context)


@signed_in
async def keys_page(request: Request) -> Response:
    return await _keys(request)


@signed_in
async def provider_key(request: Request) -> Response:
    """`padlab login PROVIDER`: checked with the provider, stored 0600, never shown again."""
    from padlab import onboard

    provider, form = request.path_params["provider"], request.state.form
    info = registry.PROVIDERS.get(provider)
    if info is None or not info.cloud:
        return error_page(request, 404, f"{provider!r} takes no API key", "pick a provider on /keys")
    parts = [str(form.get(f"part{i}", "")) for i in range(len(info.key_parts))]
    try:
        api_url = checked_api_url(panel_of(request), provider, _field(form, "api_url"))
        await run_in_threadpool(onboard.store_key, provider, parts, api_url)
    except PadlabError as exc:
        audit.record("provider-key", client(request), ok=False, provider=provider, error=str(exc))
        return await _keys(request, 400, error=exc, error_for=provider)
    audit.record("provider-key", client(request), provider=provider)
    return await _keys(request, saved=f"The {info.label} key is stored. It is not shown again.")


@signed_in
async def token_add(request: Request) -> Response:
    label = str(request.state.form.get("label", "")).strip()
    try:
        value = await run_in_threadpool(store.add_token, label)
    except PadlabError as exc:
        audit.record("token-add", client(request), ok=False, label=label, error=str(exc))
        return await _keys(request, 400, error=exc, error_for="tokens")
    audit.record("token-add", client(request), label=label)
    return await _keys(request, shown={"label": label, "token": value})


@signed_in
async def token_change(request: Request) -> Response:
    label, change = request.path_params["label"], request.path_params["change"]
    try:
        if change == "rotate":
            value = await run_in_threadpool(store.rotate_token, label)
        elif change == "revoke":
            await run_in_threadpool(store.revoke_token, label)
            value = None
        else:
            return error_page(request, 404, f"no token action {change!r}", "use rotate or revoke")
    except PadlabError as exc:
        audit.record(f"token-{change}", client(request), ok=False, label=label, error=str(exc))
        return await _keys(request, 400, error=exc, error_for="tokens")
    audit.record(f"token-{change}", client(request), label=label)
    if value is None:
        return await _keys(request, saved=f"Token {label!r} revoked: calls with it are refused now.")
    return await _keys(request, shown={"label": label, "token": value, "rotated": True})


# --- a running action's page --------------------------------------------------------------------


@workstation_page
async def job_page(request: Request, w: Workstation) -> Response:
    job = w.panel.jobs.get(w.name)
    password = job.reveal_once() if job else None
    return render(request, "job.html", w=w.item, job=job.as_dict() if job else None, password=password)


def _job_response(request: Request, name: str) -> Response:
    return RedirectResponse(f"/w/{name}/job", status_code=303)


# --- the first start's Jupyter password ----------------------------------------------------------


@workstation_page
async def password_page(request: Request, w: Workstation) -> Response:
    """Generated (shown once, here) or typed twice; then the start runs as `padlab up` with it."""
    from padlab import passwords

    panel, name, item = w.panel, w.name, w.item
    if request.method == "GET":
        return render(request, "password.html", w=item, error=None)
    form = request.state.form
    generated = form.get("how") == "generate"
    password = passwords.generate() if generated else str(form.get("password", ""))
    try:
        if not generated and password != str(form.get("repeat", "")):
            raise PadlabError("the two passwords differ", "type the same password in both boxes")
        job = await run_in_threadpool(actions.start, panel, name, password, generated)
    except PadlabError as exc:
        audit.record("start", client(request), ok=False, workstation=name, error=str(exc))
        return render(request, "password.html", status_code=400, w=item, error=exc)
    audit.record("start", client(request), workstation=name, password="generated" if generated else "typed")
    if generated:
        job.keep_secret(password)  # shown by the job page's next GET only: a reload never re-POSTs
    return _job_response(request, name)


# --- kernels ---------------------------------------------------------------------------------------


@workstation_page
async def kernels_page(request: Request, w: Workstation) -> Response:
    from padlab import kernels, profiles

    panel, name, item, profile = w.panel, w.name, w.item, w.profile
    if request.method == "GET":
        return render(request, "kernels.html", w=item, declared=profile.kernels, error=None, values={})
    form = request.state.form
    kname = str(form.get("kernel", "")).strip()
    values = {k: str(form.get(k, "")) for k in ("kernel", "packages", "python", "torch_backend")}
    try:
        want = kernels.declaration(
            str(form.get("packages", "")).split(),
            str(form.get("requirements", "")) or None,
            _field(form, "python"),
            _field(form, "torch_backend"),
        )
        profiles.check_kernel(kname, want)  # bad input is one line here, not a failed job
        panel.jobs.start(name, "kernel", lambda stage: kernels.create(profile, kname, want, on_stage=stage))
    except PadlabError as exc:
        audit.record("kernel-create", client(request), ok=False, workstation=name, error=str(exc))
        return render(
            request,
            "kernels.html",
            status_code=400,
            w=item,
            declared=profile.kernels,
            error=exc,
            values=values,
        )
    audit.record("kernel-create", client(request), workstation=name, kernel=kname)
    return _job_response(request, name)


# --- get a dataset ---------------------------------------------------------------------------------


def _follow_download(profile: Any, spec: dict[str, Any], stage: Any, job: Any) -> dict[str, Any]:
    from padlab import files

    def event(e: dict[str, Any]) -> None:
        if e.get("event") == "stage":
            stage(str(e.get("stage") or ""))
        elif e.get("event") == "progress":
            job.note({k: e.get(k) for k in ("bytes", "total", "note")})

    report = files.get(profile, spec, event)
    dl = report.get("download") or {}
    done = "already on the box" if not report.get("changed") and not report.get("attached") else "saved"
    stage(f"{dl.get('dest')}: {done} ({dl.get('bytes')} bytes)")
    return report


@workstation_page
async def get_page(request: Request, w: Workstation) -> Response:
    """`padlab get`: the box downloads (resuming after a drop); sending the same URL again re-attaches."""
    from padlab import files

    panel, name, item, profile = w.panel, w.name, w.item, w.profile
    if request.method == "GET":
        return render(request, "get.html", w=item, error=None, values={"to": "datasets"})
    form = request.state.form
    values = {k: str(form.get(k, "")) for k in ("url", "to", "sha256")}
    try:
        spec = files.check_get(
            str(form.get("url", "")).strip(),
            str(form.get("to", "") or "datasets").strip(),
            _field(form, "sha256"),
            form.get("unpack") == "1",
        )
        panel.jobs.start(
            name, "download", lambda stage, job: _follow_download(profile, spec, stage, job), with_job=True
        )
    except PadlabError as exc:
        audit.record("get", client(request), ok=False, workstation=name, error=str(exc))
        return render(request, "get.html", status_code=400, w=item, error=exc, values=values)
    audit.record("get", client(request), workstation=name, url=spec["url"])
    return _job_response(request, name)


# --- destroy ----------------------------------------------------------------------------------------


@workstation_page
async def destroy_page(request: Request, w: Workstation) -> Response:
    """`padlab destroy`: only after the name is typed, as the CLI asks for it."""
    from padlab import machines, onboard

    panel, name, item, profile = w.panel, w.name, w.item, w.profile
    cloud = registry.PROVIDERS[profile.provider].cloud
    if request.method == "GET":
        return render(request, "destroy.html", w=item, cloud=cloud, error=None)
    try:
        onboard.confirm_destroy(name, str(request.state.form.get("confirm", "")))
        if not cloud:  # refused at once, with the CLI's words, before anything is recorded
            await run_in_threadpool(machines.destroy, profile)
        panel.workstations.forget(name)
        panel.jobs.start(name, "destroy", lambda stage: machines.destroy(profile, on_stage=stage))
    except PadlabError as exc:
        audit.record("destroy", client(request), ok=False, workstation=name, error=str(exc))
        return render(request, "destroy.html", status_code=400, w=item, cloud=cloud, error=exc)
    audit.record("destroy", client(request), workstation=name)
    return _job_response(request, name)


def routes() -> list[Route]:
    return [
        Route("/new", new_page),
        Route("/new/{provider}", new_provider_page, methods=["GET", "POST"]),
        Route("/keys", keys_page),
        Route("/keys/provider/{provider}", provider_key, methods=["POST"]),
        Route("/keys/tokens", token_add, methods=["POST"]),
        Route("/keys/tokens/{label}/{change}", token_change, methods=["POST"]),
        Route("/w/{name}/job", job_page),
        Route("/w/{name}/password", password_page, methods=["GET", "POST"]),
        Route("/w/{name}/kernels", kernels_page, methods=["GET", "POST"]),
        Route("/w/{name}/get", get_page, methods=["GET", "POST"]),
        Route("/w/{name}/destroy", destroy_page, methods=["GET", "POST"]),
    ]
