"""An in-process panel (Starlette's TestClient over https://) on a private PADLAB_HOME."""

from __future__ import annotations

import re

import pytest

from tests.helpers import PASSWORD, padlab


@pytest.fixture
def panel_home(home):
    """A PADLAB_HOME with one local profile, never started, and the panel password set."""
    padlab(home, "init", "lab", "--provider", "local", "--port", "18999", "--root-dir", str(home / "nb"))
    from padlab.panel import store

    store.set_password(PASSWORD)
    return home


@pytest.fixture
def client(panel_home):
    from starlette.testclient import TestClient

    from padlab.panel.app import create_app
    from padlab.panel.web import Panel

    with TestClient(create_app(Panel(cache_s=0)), base_url="https://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client, password: str = PASSWORD):
    page = client.get("/login")
    return client.post(
        "/login", data={"csrf": csrf_of(page.text), "password": password, "next": "/"}, follow_redirects=False
    )
