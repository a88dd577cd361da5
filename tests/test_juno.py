"""Juno Connect against a real padlab Jupyter: what the app does, request by request.

Juno Connect takes the address as the server's base, logs in with the password,
then opens the classic UI under it: the file list at /tree and the classic editor
at /notebooks/NAME.ipynb, whose kernel it drives over the websocket.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from padlab.notebook_api import NotebookClient
from tests.helpers import PASSWORD, padlab_json

NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "6 * 7"}
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def juno_base(ws: dict) -> str:
    """The card's juno_url, reached on loopback (the certificate names 127.0.0.1 too)."""
    juno_url = padlab_json(ws["home"], "card")["juno_url"]
    parts = urlsplit(juno_url)
    assert parts.scheme == "https" and parts.port == ws["port"]
    return f"https://127.0.0.1:{ws['port']}{parts.path}"


def test_card_gives_juno_connect_its_own_address(workstation):
    card = workstation["card"]
    assert card["juno_url"] == card["url"]  # the server's root: Juno adds /api, /tree, ... itself
    assert card["url"].startswith("https://")


def test_juno_connect_login_classic_tree_editor_and_kernel(workstation):
    with NotebookClient(juno_base(workstation), workstation["card"]["ca_cert"]) as client:
        assert client.login(PASSWORD)
        tree = client.http.get("tree")
        assert tree.status_code == 200
        # nbclassic's file list, not Notebook 7's (a JupyterLab application page).
        assert 'id="notebook_list"' in tree.text and "jupyter-config-data" not in tree.text
        assert client.api(
            "PUT", "/contents/juno.ipynb", json={"type": "notebook", "content": NOTEBOOK}
        ).is_success
        editor = client.http.get("notebooks/juno.ipynb")
        assert editor.status_code == 200
        assert 'data-notebook-path="juno.ipynb"' in editor.text and 'id="notebook_panel"' in editor.text
        # The classic editor opens a session for the notebook, then talks to its kernel.
        session = client.api(
            "POST",
            "/sessions",
            json={
                "path": "juno.ipynb",
                "name": "juno.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        assert session.is_success, session.text
        kernel = session.json()["kernel"]["id"]
        try:
            result = client.execute(kernel, "print(6 * 7)")
        finally:
            client.api("DELETE", f"/sessions/{session.json()['id']}")
    assert result.error is None and result.stdout.strip() == "42"
