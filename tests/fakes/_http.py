"""Shared plumbing for the fake cloud APIs: a real HTTP server on 127.0.0.1 (or a testbed host address).

Each fake subclasses ``FakeServer``, declares its endpoints with ``@route`` and
supplies the provider's error bodies.  The base records every request (so tests
can count calls or look for leaked secrets) and can inject transient failures
(so client retry logic can be exercised).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from . import _tls

_Self = TypeVar("_Self", bound="FakeServer")
Handler = Callable[..., "Response"]


@dataclass
class RecordedRequest:
    """One request as the fake received it, kept for assertions."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int | None = None  # filled in once answered

    def mentions(self, text: str) -> bool:
        """Whether ``text`` appears anywhere in the request: for secret-leak checks."""
        parts = [self.path, json.dumps(self.query), json.dumps(self.headers)]
        return any(text in part for part in parts) or text.encode() in self.body


@dataclass(frozen=True)
class Request:
    """What a route handler sees: ``path`` is relative to the API base (``/v1``, ``/v2``...)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """Decoded JSON body; an empty body reads as ``None``. Raises ``ValueError`` if malformed."""
        if not self.body.strip():
            return None
        return json.loads(self.body)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by handlers to answer with a provider-formatted error."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.response = Response(status, body, dict(headers or {}))


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Declare an endpoint; ``{name}`` segments become keyword arguments of the handler."""

    def mark(handler: Handler) -> Handler:
        routes = getattr(handler, "_fake_routes", [])
        handler._fake_routes = [*routes, (method, template)]  # type: ignore[attr-defined]
        return handler

    return mark


@dataclass
class _Fault:
    status: int
    remaining: int
    method: str | None
    path: str | None
    retry_after: int | None


class FakeServer:
    """Base for a provider fake; use as a context manager to run it in a thread."""

    base_path: ClassVar[str] = ""
    auth_before_routing: ClassVar[bool] = True
    _routes: ClassVar[list[tuple[str, re.Pattern[str], str]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        routes = []
        for name, member in vars(cls).items():
            for method, template in getattr(member, "_fake_routes", []):
                pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
                routes.append((method, re.compile(pattern), name))
        cls._routes = routes

    def __init__(self, *, tls: bool = False, host: str = "127.0.0.1") -> None:
        self.tls = tls
        # Where it listens: loopback, or a testbed host address (198.18.X.1) a box must reach.
        self.host = host
        self.errors: list[BaseException] = []
        """Unexpected failures inside the fake or its backend; ``close`` raises if any remain."""
        self._log: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self: _Self) -> _Self:
        handler = type("Handler", (_RequestHandler,), {"fake": self})
        server = ThreadingHTTPServer((self.host, 0), handler)
        server.daemon_threads = True
        if self.tls:
            context = _tls.server_context()
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # so close() returns quickly
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.on_close()
        if self.errors:
            raise RuntimeError(f"{type(self).__name__} saw unexpected errors: {self.errors!r}")

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.errors.clear()  # the test already failed; don't mask its exception
        self.close()

    # -- what tests use ------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL to give the client, including the API's version prefix if it has one."""
        if self._server is None:
            raise RuntimeError("fake server is not running")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self._server.server_address[1]}{self.base_path}"

    @property
    def ca_file(self) -> Path:
        """PEM certificate to trust when ``tls=True`` (e.g. ``REQUESTS_CA_BUNDLE`` or ``verify=``)."""
        return _tls.certificate_files()[0]

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` before any other check.

        ``path`` matches by prefix, relative to the API base (``/machines``, ``/v2/droplets``...).
        """
        if status not in (408, 429, 500, 502, 503, 504):
            raise ValueError(f"fail_next is for transient errors, not {status}")
        with self._lock:
            self._faults.append(_Fault(status, count, method, path, retry_after))

    # -- provider hooks --------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        """Raise ``ApiError`` unless the request carries valid credentials."""
        raise NotImplementedError

    def error(self, status: int, message: str | None = None) -> ApiError:
        """The provider's error for ``status`` (``message`` overrides its default text)."""
        raise NotImplementedError

    def method_not_allowed(self, allowed: list[str]) -> ApiError:
        return self.error(405)

    def extra_headers(self) -> dict[str, str]:
        """Headers the provider adds to every response."""
        return {}

    def on_close(self) -> None:
        """Release provider resources once the server has stopped."""

    # -- dispatch -------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        split = urlsplit(target)
        full_path = unquote(split.path)
        record = RecordedRequest(
            method, full_path, parse_qs(split.query, keep_blank_values=True), dict(headers), body
        )
        with self._lock:
            self._log.append(record)
        try:
            response = self._dispatch(record)
        except ApiError as error:
            response = error.response
        except Exception as error:  # a bug in the fake or its backend: surface it
            self.errors.append(error)
            response = self.error(500).response
        response.headers = {**self.extra_headers(), **response.headers}
        record.status = response.status
        return response

    def _dispatch(self, record: RecordedRequest) -> Response:
        path = record.path.rstrip("/") or "/"
        if not (path == self.base_path or path.startswith(self.base_path + "/")):
            raise self.error(404)
        request = Request(
            record.method, path[len(self.base_path) :], record.query, record.headers, record.body
        )
        self._inject_fault(request)
        if self.auth_before_routing:
            self.authenticate(request)
        allowed = []
        for method, pattern, name in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            if not self.auth_before_routing:
                self.authenticate(request)
            handler: Handler = getattr(self, name)
            return handler(request, **match.groupdict())
        raise self.method_not_allowed(allowed) if allowed else self.error(404)

    def _inject_fault(self, request: Request) -> None:
        with self._lock:
            for fault in self._faults:
                if (fault.method or request.method) != request.method:
                    continue
                if not request.path.startswith(fault.path or ""):
                    continue
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                break
            else:
                return
        error = self.error(fault.status)
        if fault.retry_after is not None:
            error.response.headers["Retry-After"] = str(fault.retry_after)
        raise error


class _RequestHandler(BaseHTTPRequestHandler):
    """Adapts ``http.server`` to ``FakeServer.handle``; HTTP/1.1 so clients can keep connections."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    fake: ClassVar[FakeServer]

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.fake.handle(self.command, self.path, headers, body)
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        if response.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet; ``FakeServer.requests`` is the log."""
