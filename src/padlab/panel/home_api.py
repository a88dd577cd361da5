"""The home API: what `padlab` does against a remote home (home/client.py), under /api/home.

Each route calls the same `LocalHome` method the CLI calls on its own machine, so a command
gives the same result through the panel. Long actions answer as JSON lines while they run
(application/x-ndjson: {"stage"}, {"event"}, {"warning"}, then {"result"} or {"error", "fix"});
start, stop, a kernel's build and destroy run as the panel's jobs, so its pages show them too.
Scopes: read for what only looks, start-stop for what starts, stops, downloads, builds a kernel
or changes autostop, admin for what opens the box or spends or loses money (a new Jupyter
password, a budget, the default profile, destroy) and for moving a profile in.
`POST /api/tokens` mints a token with the panel password, throttled like the sign-in form.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from padlab.errors import PadlabError
from padlab.home.local import LocalHome
from padlab.panel import audit, store
from padlab.panel.api import bearer
from padlab.panel.web import client, panel_of, too_many

HOME = LocalHome()
KEEPALIVE_S = 10.0


class BadRequest(PadlabError):
    """A body the API cannot read (HTTP 400)."""


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", "send Content-Type: application/json")
    return body


def _name(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("name must be a string", "send the profile's name")
    return value


def _error(exc: PadlabError) -> Response:
    code = 400 if isinstance(exc, BadRequest) else 409
    from padlab.panel.views import UnknownWorkstation

    if "no profile named" in exc.message or isinstance(exc, UnknownWorkstation):
        code = 404
    return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=code)


def _posted(scope: str) -> Callable[[Callable], Callable]:
    """A POST route for a token with `scope` (api.bearer): the handler gets the body as a JSON object,
    and a PadlabError it raises while reading it (or after) is the one-line answer (_error)."""

    def decorate(handler: Callable[[Request, dict[str, Any]], Any]) -> Callable:
        @bearer(scope)
        async def route(request: Request) -> Response:
            try:
                return await handler(request, await _body(request))
            except PadlabError as exc:
                return _error(exc)

        return route

    return decorate


def _answer(work: Callable[[], Any]) -> Callable[[], Any]:
    async def run() -> Response:
        try:
            return JSONResponse(await run_in_threadpool(work))
        except PadlabError as exc:
            return _error(exc)

    return run


def _lines(start: Callable[[Callable[[dict], None]], threading.Thread]) -> StreamingResponse:
    """Stream what a worker emits as JSON lines; a blank line every KEEPALIVE_S while it is quiet."""
    out: queue.Queue[dict | None] = queue.Queue()
    start(out.put)

    async def body() -> AsyncIterator[bytes]:
        while True:
            try:
                message = await run_in_threadpool(out.get, True, KEEPALIVE_S)
            except queue.Empty:
                yield b"\n"
                continue
            if message is None:
                return
            yield (json.dumps(message, default=str) + "\n").encode()
            await asyncio.sleep(0)

    return StreamingResponse(body(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})


def _worker(
    work: Callable[[Callable[[dict], None]], Any],
) -> Callable[[Callable[[dict], None]], threading.Thread]:
    """A thread that runs work(emit) and emits its result or its error, then the end."""

    def start(emit: Callable[[dict], None]) -> threading.Thread:
        def run() -> None:
            try:
                emit({"result": work(emit)})
            except PadlabError as exc:
                emit({"error": exc.message, "fix": exc.fix})
            except Exception as exc:  # one line, as the CLI's last resort
                emit({"error": f"internal error on the panel: {type(exc).__name__}: {exc}", "fix": ""})
            finally:
                emit(None)  # type: ignore[arg-type]

        thread = threading.Thread(target=run, name="panel-home-api", daemon=True)
        thread.start()
        return thread

    return start


def _as_job(request: Request, name: str, action: str, work: Callable[[Callable[[str], None]], Any]) -> Any:
    """Run work as the panel's job for `name` (pages show it; one at a time), streaming its stages."""
    panel = panel_of(request)

    def run(emit: Callable[[dict], None]) -> Any:
        done = threading.Event()
        result: dict[str, Any] = {}

        def job(stage: Callable[[str], None]) -> None:
            def both(text: str) -> None:
                stage(text)
                if text:
                    emit({"stage": text})

            try:
                result["value"] = work(both)
            except Exception as exc:  # the job records it too; the stream says it as one line
                result["error"] = exc
                raise
            finally:
                done.set()

        panel.workstations.forget(name)
        panel.jobs.start(name, action, job)
        done.wait()
        if "error" in result:
            raise result["error"]
        return result.get("value")

    return run


@bearer("read")
async def whoami(request: Request) -> Response:
    entry = {"label": request.state.token_label}
    entry["scope"] = next(t["scope"] for t in store.list_tokens() if t["label"] == entry["label"])
    return JSONResponse(entry)


@bearer("read")
async def profiles(request: Request) -> Response:
    return await _answer(HOME.profiles)()


@bearer("read")
async def status(request: Request) -> Response:
    if request.query_params.get("all"):
        return await _answer(HOME.status_all)()
    name = request.query_params.get("name")
    return await _answer(lambda: HOME.status(name))()


@bearer("read")
async def prepare_up(request: Request) -> Response:
    name = request.query_params.get("name")
    return await _answer(lambda: HOME.prepare_up(name, create=False))()


@bearer("read")
async def costs(request: Request) -> Response:
    q = request.query_params
    return await _answer(lambda: HOME.costs(q.get("name"), q.get("month"), bool(q.get("reconcile"))))()


@bearer("read")
async def downloads(request: Request) -> Response:
    name = request.query_params.get("name")
    return await _answer(lambda: HOME.downloads(name))()


def _resolved(name: str | None) -> str:
    from padlab import profiles

    return profiles.load(name).name


@_posted("start-stop")
async def up(request: Request, body: dict[str, Any]) -> Response:
    name = await run_in_threadpool(_resolved, _name(body.get("name")))
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise BadRequest("password must be a string", "send the Jupyter password as text")
    flags = {k: bool(body.get(k)) for k in ("over_budget", "move", "check")}
    _audited(request, "up", name)

    def work(stage: Callable[[str], None]) -> Any:
        return HOME.up(name, password, bool(body.get("generated")), stage, **flags)

    return _lines(_worker(_as_job(request, name, "start", work)))


@_posted("start-stop")
async def down(request: Request, body: dict[str, Any]) -> Response:
    name = await run_in_threadpool(_resolved, _name(body.get("name")))
    _audited(request, "down", name)
    warnings: list[str] = []

    def work(stage: Callable[[str], None]) -> Any:
        return HOME.down(name, stage, warnings.append)

    job = _as_job(request, name, "stop", work)

    def run(emit: Callable[[dict], None]) -> Any:
        try:
            return job(emit)
        finally:
            for line in warnings:
                emit({"warning": line})

    return _lines(_worker(run))


@_posted("start-stop")
async def get(request: Request, body: dict[str, Any]) -> Response:
    name = _name(body.get("profile"))
    spec = {k: body.get(k) for k in ("url", "to", "sha256", "unpack")}
    if not isinstance(spec["url"], str) or not isinstance(spec["to"], str):
        raise BadRequest("url and to must be strings", "send the download's URL and folder")
    _audited(request, "get", name)
    return _lines(_worker(lambda emit: HOME.get(name, spec, lambda event: emit({"event": event}))))


@bearer("admin")
async def take_in(request: Request) -> Response:
    from padlab.home import moves

    try:
        body = await _body(request)
        _moved_api_url(request, body)
        result = await run_in_threadpool(moves.take_in, body)
    except PadlabError as exc:
        audit.record(
            "profile-in", client(request), ok=False, error=exc.message, token=request.state.token_label
        )
        return _error(exc)
    audit.record("profile-in", client(request), workstation=result["name"], token=request.state.token_label)
    return JSONResponse(result)


def _moved_api_url(request: Request, bundle: Any) -> None:
    """A moved-in profile's API URL passes the panel's forms' rule: the stored key goes only to the
    provider's own API or one the host's admin allowed (lifecycle.checked_api_url)."""
    from padlab import registry
    from padlab.panel.lifecycle import checked_api_url

    profile = bundle.get("profile") if isinstance(bundle, dict) else None
    options = profile.get("options") if isinstance(profile, dict) else None
    provider = profile.get("provider") if isinstance(profile, dict) else None
    if isinstance(options, dict) and provider in registry.PROVIDERS:
        url = options.get("api_url")
        checked_api_url(panel_of(request), provider, url if isinstance(url, str) else None)


# -- the other commands: each the LocalHome method the CLI calls at home ----------------------


def _text(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string", f"send {key} as text")
    return value


def _stage_of(emit: Callable[[dict], None]) -> Callable[[str], None]:
    def stage(text: str) -> None:
        if text:
            emit({"stage": text})

    return stage


def _audited(request: Request, action: str, name: str | None) -> None:
    audit.record(action, client(request), workstation=name, token=request.state.token_label)


@_posted("admin")
async def passwd(request: Request, body: dict[str, Any]) -> Response:
    """A new Jupyter password is a way into the box: admin only."""
    name = _name(body.get("name"))
    password = _text(body, "password", required=True)
    _audited(request, "passwd", name)
    generated = bool(body.get("generated"))
    return _lines(_worker(lambda emit: HOME.passwd(name, password or "", generated, _stage_of(emit))))


@_posted("read")
async def kernels_list(request: Request, body: dict[str, Any]) -> Response:
    name = _name(body.get("name"))
    cuda = body.get("cuda") is not False
    return _lines(_worker(lambda emit: HOME.kernels(name, cuda, _stage_of(emit))))


@_posted("start-stop")
async def kernel_create(request: Request, body: dict[str, Any]) -> Response:
    from padlab import profiles

    name = await run_in_threadpool(_resolved, _name(body.get("name")))
    kernel = _text(body, "kernel", required=True) or ""
    want = body.get("want")
    if not isinstance(want, dict):
        raise BadRequest("want must be an object", "send what to build, as `padlab kernels create` does")
    profiles.check_kernel(kernel, want)  # bad input is one line here, not a failed job
    _audited(request, "kernel-create", name)

    def work(stage: Callable[[str], None]) -> Any:
        return HOME.kernel_create(name, kernel, want, stage)

    return _lines(_worker(_as_job(request, name, "kernel", work)))


@bearer("read")
async def autostop_show(request: Request) -> Response:
    name = request.query_params.get("name")
    return await _answer(lambda: HOME.autostop(name, None, None, None))()


@_posted("start-stop")
async def autostop_set(request: Request, body: dict[str, Any]) -> Response:
    name = _name(body.get("name"))
    limit, max_uptime, action = (_text(body, k) for k in ("limit", "max_uptime", "action"))
    _audited(request, "autostop", name)
    return await _answer(lambda: HOME.autostop(name, limit, max_uptime, action))()


@_posted("start-stop")
async def keep(request: Request, body: dict[str, Any]) -> Response:
    name = _name(body.get("name"))
    duration = _text(body, "duration", required=True) or ""
    _audited(request, "keep", name)
    return await _answer(lambda: HOME.keep(name, duration))()


@bearer("read")
async def budget_show(request: Request) -> Response:
    return await _answer(lambda: HOME.budget(None, False, None))()


@_posted("admin")
async def budget_set(request: Request, body: dict[str, Any]) -> Response:
    """A budget decides what `up` may spend: admin only."""
    from padlab import money

    name = _name(body.get("name"))
    value = body.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise BadRequest("value must be a number of USD, or null for off", "e.g. 20")
    if value is not None:
        value = money.parse_amount(str(value))
    _audited(request, "budget", name)
    return await _answer(lambda: HOME.budget(name, True, value))()


@bearer("read")
async def logs(request: Request) -> Response:
    q = request.query_params
    try:
        lines = int(q.get("lines") or "50")
        if not 1 <= lines <= 100000:
            raise ValueError
    except ValueError:
        return _error(BadRequest("lines must be a number from 1 to 100000", "e.g. lines=50"))
    return await _answer(lambda: HOME.logs(q.get("name"), bool(q.get("agent")), lines))()


@_posted("admin")
async def set_default(request: Request, body: dict[str, Any]) -> Response:
    name = _text(body, "name", required=True) or ""
    _audited(request, "default", name)
    return await _answer(lambda: HOME.set_default(name))()


@_posted("admin")
async def init(request: Request, body: dict[str, Any]) -> Response:
    """`padlab init` on the panel, with its new-workstation page's rules: no file of the CLI's machine
    (the panel cannot read it), the panel's own ssh key when none is given, the stored key sent only
    to the provider's API or one the host's admin allowed."""
    from padlab import onboard, registry
    from padlab.panel.lifecycle import checked_api_url

    name = _name(body.get("name"))
    provider = _name(body.get("provider"))
    cloud, fields = body.get("cloud") or {}, body.get("fields") or {}
    if not isinstance(cloud, dict) or not isinstance(fields, dict):
        raise BadRequest("cloud and fields must be objects", "send them as `padlab init` does")
    unknown = (set(fields) - set(onboard.INIT_FIELDS)) | (set(cloud) - set(onboard.CLOUD_KEYS))
    if unknown:
        raise BadRequest(f"unknown settings: {', '.join(sorted(unknown))}", "update padlab on both ends")
    fields = {k: v for k, v in fields.items() if v is not None}
    cloud = {k: v for k, v in cloud.items() if v is not None}
    for field in ("identity", "acme_ca"):
        if fields.get(field):
            flag = "--" + field.replace("_", "-")
            raise PadlabError(
                f"{flag} names a file on this machine, and the profile lives on the panel, which cannot read it",
                f"leave {flag} out (the panel uses its own ssh key, shown on its Keys page), "
                "or make the profile here (padlab remote logout) and move it: padlab remote push NAME",
            )
    known = provider in registry.PROVIDERS
    if known and registry.PROVIDERS[provider].cloud:
        cloud["api_url"] = checked_api_url(panel_of(request), provider, cloud.get("api_url"))
    if known and (registry.PROVIDERS[provider].cloud or registry.PROVIDERS[provider].needs_host):
        from padlab.panel import sshkey

        fields["identity"], _ = await run_in_threadpool(sshkey.ensure)
    _audited(request, "new", name)
    return await _answer(lambda: HOME.init(name, provider, bool(body.get("force")), cloud, fields))()


@_posted("admin")
async def login(request: Request, body: dict[str, Any]) -> Response:
    """A provider's API key, stored 0600 on the panel and never sent back; checked only against the
    provider's own API or one the host's admin allowed."""
    from padlab import registry
    from padlab.panel.lifecycle import checked_api_url

    provider = _text(body, "provider", required=True) or ""
    parts = body.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise BadRequest("parts must be a list of strings", "send the key as `padlab login` does")
    if provider not in registry.PROVIDERS or not registry.PROVIDERS[provider].cloud:
        raise BadRequest(f"no cloud provider named {provider!r}", "use one `padlab login --help` lists")
    api_url = checked_api_url(panel_of(request), provider, _text(body, "api_url"))
    audit.record("provider-key", client(request), provider=provider, token=request.state.token_label)
    verify, autostop_token = body.get("verify") is not False, bool(body.get("autostop_token"))
    return await _answer(lambda: HOME.login(provider, parts, api_url, verify, autostop_token))()


@_posted("read")
async def doctor(request: Request, body: dict[str, Any]) -> Response:
    """The checks of the profile's own address only, from the panel's machine (no address of the
    caller's choosing); a password given is used for the Jupyter login check and not kept."""
    name = _name(body.get("name"))
    password = _text(body, "password")
    return await _answer(lambda: HOME.doctor(name, password, None))()


@bearer("read")
async def alert_show(request: Request) -> Response:
    name = request.query_params.get("name")
    return await _answer(lambda: HOME.alert(name, None, None, False, False))()


@_posted("admin")
async def alert_set(request: Request, body: dict[str, Any]) -> Response:
    """Where alerts go (a URL the panel sends to): admin only; the answer masks the topic."""
    name = _name(body.get("name"))
    ntfy = _text(body, "ntfy")
    after_s = body.get("after_s")
    if after_s is not None and (isinstance(after_s, bool) or not isinstance(after_s, (int, float))):
        raise BadRequest("after_s must be a number of seconds or null (off)", "e.g. 10800")
    _audited(request, "alert", name)
    set_after, test = bool(body.get("set_after")), bool(body.get("test"))
    return await _answer(lambda: HOME.alert(name, ntfy, after_s, set_after, test))()


@_posted("start-stop")
async def start_machine(request: Request, body: dict[str, Any]) -> Response:
    name = await run_in_threadpool(_resolved, _name(body.get("name")))
    _audited(request, "up", name)
    over_budget = bool(body.get("over_budget"))

    def work(stage: Callable[[str], None]) -> Any:
        return HOME.start_machine(name, over_budget, stage)

    return _lines(_worker(_as_job(request, name, "start", work)))


@_posted("admin")
async def destroy(request: Request, body: dict[str, Any]) -> Response:
    """Deletes a machine and its disk for good: admin only, and only with the name typed."""
    from padlab import onboard

    name = await run_in_threadpool(_resolved, _text(body, "name", required=True))
    typed = _text(body, "typed", required=True) or ""
    onboard.confirm_destroy(name, typed)
    _audited(request, "destroy", name)

    def work(stage: Callable[[str], None]) -> Any:
        return HOME.destroy(name, typed, stage)

    return _lines(_worker(_as_job(request, name, "destroy", work)))


async def mint(request: Request) -> Response:
    """A token for `padlab remote login` in exchange for the panel password (not a passkey: the CLI
    has none); the password check is reserved before it runs, as the sign-in form's."""
    panel, who = panel_of(request), client(request)
    retry = panel.failures.retry_after(who)
    if retry:
        return too_many(request, retry, api=True)
    try:
        body = await _body(request)
        scope = store.check_scope(str(body.get("scope") or store.LEGACY_SCOPE))
        label = store.check_label(str(body.get("label") or ""))
    except PadlabError as exc:
        return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=400)
    retry = panel.failures.reserve(who)
    if retry:
        return too_many(request, retry, api=True)
    ok = False
    try:
        ok = await run_in_threadpool(store.check_password, str(body.get("password") or ""))
    finally:
        panel.failures.settle(who, ok)
    if not ok:
        audit.record("token-mint", who, ok=False)
        return JSONResponse(
            {"error": "wrong panel password", "fix": "type the password `padlab panel` set (or use --token)"},
            status_code=401,
        )
    try:
        token = await run_in_threadpool(store.add_token, label, scope)
    except PadlabError as exc:
        return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=409)
    audit.record("token-mint", who, label=label, scope=scope)
    return JSONResponse({"token": token, "label": label, "scope": scope})


def routes() -> list[Route]:
    return [
        Route("/api/tokens", mint, methods=["POST"]),
        Route("/api/home/whoami", whoami),
        Route("/api/home/profiles", profiles),
        Route("/api/home/profiles", take_in, methods=["POST"]),
        Route("/api/home/status", status),
        Route("/api/home/prepare-up", prepare_up),
        Route("/api/home/costs", costs),
        Route("/api/home/downloads", downloads),
        Route("/api/home/up", up, methods=["POST"]),
        Route("/api/home/down", down, methods=["POST"]),
        Route("/api/home/get", get, methods=["POST"]),
        Route("/api/home/passwd", passwd, methods=["POST"]),
        Route("/api/home/kernels/list", kernels_list, methods=["POST"]),
        Route("/api/home/kernels", kernel_create, methods=["POST"]),
        Route("/api/home/autostop", autostop_show),
        Route("/api/home/autostop", autostop_set, methods=["POST"]),
        Route("/api/home/keep", keep, methods=["POST"]),
        Route("/api/home/budget", budget_show),
        Route("/api/home/budget", budget_set, methods=["POST"]),
        Route("/api/home/logs", logs),
        Route("/api/home/default", set_default, methods=["POST"]),
        Route("/api/home/destroy", destroy, methods=["POST"]),
        Route("/api/home/init", init, methods=["POST"]),
        Route("/api/home/doctor", doctor, methods=["POST"]),
        Route("/api/home/alert", alert_show),
        Route("/api/home/alert", alert_set, methods=["POST"]),
        Route("/api/home/start-machine", start_machine, methods=["POST"]),
        Route("/api/home/login", login, methods=["POST"]),
    ]
