"""The panel's costs page and API (the same figures as `padlab costs`) and its Web Push subscription."""

from __future__ import annotations

import base64
import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlab import ledger, money, webpush
from padlab.providers.base import Machine
from tests.fakes.push_endpoints import FakePushService
from tests.panel.conftest import csrf_of, sign_in


def ran(hours: float, price: float) -> None:
    now = time.time()
    ledger.observe("gpu", Machine(state="off", price_per_hour=price), now - hours * 3600)
    ledger.observe("gpu", Machine(state="running", price_per_hour=price), now - hours * 3600)
    ledger.observe("gpu", Machine(state="off", price_per_hour=price), now)


def test_costs_page_shows_the_clis_figures_with_an_svg_chart(client, panel_home):
    assert client.get("/costs", follow_redirects=False).status_code == 303  # a session first
    ran(2, 1.5)
    money.set_budget(None, 10)
    sign_in(client)
    page = client.get("/costs")
    assert page.status_code == 200 and "(estimate)" in page.text
    assert "$3.00" in page.text
    assert (
        '<svg class="chart"' in page.text
        and "<title>" in page.text
        and "<script" not in page.text.split("<svg")[1].split("</svg>")[0]
    )
    assert "Budget all workstations: $3.00 of $10.00" in page.text
    assert webpush.application_server_key() in page.text


def test_costs_api_is_the_cli_json(client, panel_home):
    from tests.helpers import padlab

    ran(1, 2.0)
    token = padlab(panel_home, "panel", "token", "add", "shortcuts").stdout.strip()
    assert client.get("/api/costs").status_code == 401
    data = client.get("/api/costs", headers={"Authorization": f"Bearer {token}"}).json()
    assert data["total_usd"] == money.costs()["total_usd"] and data["profiles"]["gpu"]["hours"] > 0.99


def test_a_month_out_of_range_is_a_400_not_a_dropped_connection(client, panel_home):
    from tests.helpers import padlab

    token = padlab(panel_home, "panel", "token", "add", "shortcuts").stdout.strip()
    sign_in(client)
    for month in ("0000-01", "9999-12", "1969-12"):
        page = client.get(f"/costs?month={month}")
        assert page.status_code == 400 and "out of range" in page.text
        api = client.get(f"/api/costs?month={month}", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 400 and "year from" in api.json()["fix"]
    assert client.get("/costs?month=2026-05").status_code == 200


def test_push_subscription_then_an_alert_reaches_it(client, panel_home):
    import http_ece

    from padlab import alerts

    sign_in(client)
    csrf = csrf_of(client.get("/costs").text)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = b"panel-auth-16byt"
    with FakePushService() as service:
        sub = {
            "endpoint": service.endpoint,
            "expirationTime": None,
            "keys": {
                "p256dh": base64.urlsafe_b64encode(public).rstrip(b"=").decode(),
                "auth": base64.urlsafe_b64encode(auth).rstrip(b"=").decode(),
            },
        }
        assert (
            client.post(
                "/push/subscribe", data={"csrf": "forged", "subscription": json.dumps(sub)}
            ).status_code
            == 403
        )
        answer = client.post("/push/subscribe", data={"csrf": csrf, "subscription": json.dumps(sub)})
        assert answer.status_code == 200 and answer.json() == {"subscribed": True}
        assert client.post("/push/subscribe", data={"csrf": csrf, "subscription": "nope"}).status_code == 400
        assert alerts.send("budget", "80% of the budget is spent") == []
        [msg] = service.wait(1)
    payload = json.loads(http_ece.decrypt(msg.body, private_key=key, auth_secret=auth, version="aes128gcm"))
    assert payload["title"] == "budget" and payload["body"] == "80% of the budget is spent"


def test_service_worker_is_served_from_the_root(client):
    sw = client.get("/sw.js")
    assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
    assert "showNotification" in sw.text
