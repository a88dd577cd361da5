"""The connection card: everything a tablet needs to reach the workstation, never the password."""

from __future__ import annotations

import io
import time
from typing import Any

from padlab import acme, registry, tls
from padlab.profiles import Profile

# The box serves nbclassic at the server's root and JupyterLab at /lab (padlab.box.venv):
# Juno Connect takes the root as its server and calls /api, /tree and /notebooks/NAME.ipynb
# under it, while the root itself redirects a browser to JupyterLab.
JUNO_PATH = "/"
URL_LABEL = "JupyterLab (Safari)"
JUNO_LABEL = "Juno Connect"


def build(profile: Profile, st: dict[str, Any], live_state: str | None = None) -> dict[str, Any]:
    """Card data from the profile and recorded state alone, so `padlab card` needs no network."""
    host = st.get("host")
    # The port Jupyter is reached on from outside: the profile's, unless the cloud maps it (RunPod).
    port = st.get("public_port") or profile.port
    base = f"https://{_url_host(host)}:{port}" if host else None
    started = st.get("started_at")
    public = (st.get("tls") or {}).get("kind") == "public"
    # A cloud's HTTPS proxy (RunPod's), publicly trusted: the address for Safari and Juno, with no
    # CA profile; Jupyter's own port (padlab's CA) stays as the direct address.
    proxy = st.get("proxy_url") if host else None
    if proxy:
        base, public = proxy.rstrip("/"), True
    url = f"{base}/" if base else None
    return {
        "name": profile.name,
        "provider": profile.provider,
        "state": live_state or st.get("phase", "unknown"),
        "url": url,
        "juno_url": f"{base}{JUNO_PATH}" if base else None,
        "direct_url": f"https://{_url_host(host)}:{port}/" if proxy else None,
        "host": host,
        "port": port,
        "local_url": f"https://localhost:{profile.port}/"
        if registry.get(profile.provider).this_machine
        else None,
        "ca_cert": str(tls.ca_cert_path()) if proxy or not public else None,
        "ca_profile_hint": None
        if public
        else "padlab ca export --out DIR  (then AirDrop padlab-ca.mobileconfig to the iPad)",
        "public_cert": public,
        "tls_line": acme.summary(st.get("tls")),
        "cert_sha256": st.get("cert_sha256"),
        "password_hint": st.get("password_hint"),
        "ssh": st.get("ssh_command"),
        "mosh": st.get("mosh_command"),
        "mosh_note": None if st.get("mosh_command") else st.get("mosh_note"),
        "blink": st.get("blink_host"),
        "started_at": started,
        "uptime_s": round(time.time() - started)
        if started and (live_state or st.get("phase")) == "running"
        else None,
        "warnings": st.get("warnings", []),
    }


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def uptime_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    out = [
        ("State", card["state"]),
        (URL_LABEL, card["url"] or "-"),
        (JUNO_LABEL, card.get("juno_url") or "-"),
    ]
    if card.get("local_url"):
        out.append(("On this machine", card["local_url"]))
    if card.get("direct_url"):
        out.append(("Direct (padlab's CA)", card["direct_url"]))
    out += [
        ("Password", card["password_hint"] or "not set yet"),
        (
            "Certificate",
            "SHA-256 " + tls.pretty_fingerprint(card["cert_sha256"]) if card["cert_sha256"] else "-",
        ),
    ]
    if card.get("tls_line"):
        out.append(("TLS", card["tls_line"]))
    if card.get("ca_profile_hint"):
        out += [("Trust the CA", card["ca_profile_hint"]), ("CA file", card["ca_cert"])]
    if card.get("ssh"):
        out.append(("ssh", card["ssh"]))
    if card.get("mosh"):
        out.append(("mosh", card["mosh"]))
    elif card.get("mosh_note"):
        out.append(("mosh", card["mosh_note"]))
    if card.get("blink"):
        out.append(("Blink host", card["blink"]))
    if card.get("uptime_s") is not None:
        out.append(("Up for", uptime_text(card["uptime_s"])))
    return out


def qr_text(data: str) -> str:
    import segno

    buf = io.StringIO()
    segno.make(data, error="m").terminal(out=buf, compact=True, border=2)
    return buf.getvalue()


def write_png(card: dict[str, Any], path: str) -> None:
    import segno

    if not card["url"]:
        from padlab.errors import PadlabError

        raise PadlabError("this workstation has no URL yet", "run `padlab up` first")
    segno.make(card["url"], error="m").save(path, kind="png", scale=8, border=4)


def render_plain(card: dict[str, Any], qr: bool) -> str:
    lines = [f"padlab workstation '{card['name']}' ({card['provider']})"]
    width = max(len(k) for k, _ in rows(card))
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows(card)]
    lines += [f"  warning: {w}" for w in card["warnings"]]
    if qr and card["url"]:
        lines.append("")
        lines.append(qr_text(card["url"]))
    return "\n".join(lines)


def render_rich(card: dict[str, Any], qr: bool) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows(card):
        style = "bold green" if key in (URL_LABEL, JUNO_LABEL) else ""
        table.add_row(key, Text(value, style=style))
    parts: list[Any] = [table]
    parts += [Text(f"warning: {w}", style="yellow") for w in card["warnings"]]
    if qr and card["url"]:
        parts.append(Text.from_ansi(qr_text(card["url"])))
        parts.append(
            Text(
                "Scan with the iPad camera to open JupyterLab in Safari; in Juno Connect, add the Juno Connect address.",
                style="dim",
            )
        )
    color = "green" if card["state"] == "running" else "yellow"
    return Panel(Group(*parts), title=f"padlab · {card['name']}", border_style=color, expand=False)
