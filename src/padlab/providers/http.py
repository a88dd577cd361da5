"""A JSON-over-HTTPS client for cloud APIs that padlab speaks directly (Paperspace, Lambda).

Transient failures (connection errors, 408/429/5xx) are retried with backoff;
a 401/403 names where the key came from; anything else becomes one line with
the API's own message. The key is only ever in the Authorization header.
"""

from __future__ import annotations

import os
from typing import Any

from padlab.errors import PadlabError
from padlab.providers import credentials, retry


def base_url(options: dict[str, Any], env: str, default: str) -> str:
    """The profile's --api-url, else the environment override, else the public endpoint."""
    return str(options.get("api_url") or os.environ.get(env) or default).rstrip("/")


class Refused(PadlabError):
    """The API said no (4xx other than 401/403/404), with its status and, where it gives one, its error code."""

    def __init__(self, message: str, fix: str, status: int, code: str | None) -> None:
        super().__init__(message, fix)
        self.status = status
        self.code = code


class JsonApi:
    def __init__(self, label: str, provider: str, url: str, secret: credentials.Secret) -> None:
        import httpx

        self.label = label
        self.provider = provider
        self.url = url
        self.secret = secret
        self.client = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {secret.value}", "Accept": "application/json"},
            timeout=httpx.Timeout(30.0, connect=10.0),
        )

    def send(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """One attempt: (status, body) for 2xx and 404, ``retry.Transient`` or PadlabError otherwise."""
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise retry.Transient(f"cannot reach {self.url}: {type(exc).__name__}") from None
        status = response.status_code
        if status in retry.TRANSIENT_STATUS:
            raise retry.Transient(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        body = _json(response)
        if status in (401, 403):
            raise credentials.rejected(self.secret, f"{self.label} API key", self.provider)
        if status == 404 or status < 300:
            return status, body
        message, code = _message(body)
        raise Refused(
            f"{self.label} refused {method} {path} (HTTP {status}): {message or response.reason_phrase}",
            "check the profile's settings (padlab init NAME --force ...) and try again",
            status=status,
            code=code,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """``send`` with retries; only for requests that are safe to repeat."""
        return retry.call(lambda: self.send(method, path, **kwargs), f"{self.label} {method} {path}")

    def close(self) -> None:
        self.client.close()


def _message(body: Any) -> tuple[str | None, str | None]:
    """(message, code) of an error body: Paperspace's flat ``{"message", "code"}``, Lambda's
    ``{"error": {"code", "message", "suggestion"}}``, RunPod's ``{"error": MESSAGE}`` or its v2 ``{"detail"}``."""
    if not isinstance(body, dict):
        return None, None
    inner = body.get("error")
    if isinstance(inner, dict):
        return inner.get("message"), inner.get("code")
    if isinstance(inner, str):  # RunPod's REST API: {"error": MESSAGE, "status": CODE}
        return inner, None
    # RunPod's REST v2: problem+json {"title", "status", "detail"}
    message = body.get("message") or body.get("detail")
    return message, body.get("code") if isinstance(body.get("code"), str) else None


def _json(response: Any) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def verify(label: str, provider: str, url: str, value: str, path: str, params: Any = None) -> None:
    """One cheap authenticated GET with a key just typed, so `padlab login` stores only one that works."""
    api = JsonApi(label, provider, url, credentials.Secret(value, "the key you entered"))
    try:
        api.request("GET", path, params=params)
    finally:
        api.close()
