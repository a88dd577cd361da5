"""A Jupyter server extension with one read-only endpoint for padlab's autostop agent.

It runs inside Jupyter's own environment (installed there as ``padlab_agent_ext``),
not in the stdlib-only box program. Why a separate credential: Jupyter's token
login stays off, so the agent proves itself with a random 256-bit token that only
it can read (mode 0600, root's on system boxes); Jupyter keeps just its SHA-256 in
its config folder, so a notebook that reads Jupyter's files learns nothing usable.
The endpoint answers same-host callers only, changes nothing, and does not count
as activity, so polling it every minute never keeps the box up.
"""

import hashlib
import hmac
import ipaddress
import json
import os

from jupyter_server.utils import ensure_async, url_path_join
from tornado import web

PATH = "/padlab-agent/activity"
HASH_FILE = "padlab-agent.sha256"
SCHEME = "padlab-agent "


class ActivityHandler(web.RequestHandler):
    """GET: Jupyter's activity, open connections and each kernel's execution state."""

    def initialize(self, serverapp) -> None:
        self.serverapp = serverapp

    def _authorized(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith(SCHEME) or not self._same_host():
            return False
        try:
            with open(os.path.join(self.serverapp.config_dir, HASH_FILE)) as fh:
                want = fh.read().strip()
        except OSError:
            return False
        got = hashlib.sha256(header[len(SCHEME) :].strip().encode()).hexdigest()
        return bool(want) and hmac.compare_digest(got, want)

    def _same_host(self) -> bool:
        peer = self.request.remote_ip or ""
        try:
            if ipaddress.ip_address(peer).is_loopback:
                return True
            local = self.request.connection.stream.socket.getsockname()[0]
        except (ValueError, AttributeError, OSError):
            return False
        return peer == local

    async def get(self) -> None:
        if not self._authorized():
            raise web.HTTPError(403)
        paths = {}
        for session in await ensure_async(self.serverapp.session_manager.list_sessions()):
            kernel = session.get("kernel") or {}
            paths[kernel.get("id")] = session.get("path") or session.get("name")
        kernels = []
        for model in await ensure_async(self.serverapp.kernel_manager.list_kernels()):
            kernels.append(
                {
                    "id": hashlib.sha256(model["id"].encode()).hexdigest()[:16],
                    "name": model.get("name"),
                    "path": paths.get(model["id"]),
                    "execution_state": model.get("execution_state"),
                    "last_activity": model.get("last_activity"),
                    "connections": model.get("connections", 0),
                }
            )
        body = {
            "started": self.settings["started"].isoformat(),
            "last_activity": self.application.last_activity().isoformat(),
            "connections": sum(k["connections"] for k in kernels),
            "kernels": kernels,
        }
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))


def _jupyter_server_extension_points():
    return [{"module": "padlab_agent_ext"}]


def _load_jupyter_server_extension(serverapp) -> None:
    pattern = url_path_join(serverapp.base_url, PATH)
    serverapp.web_app.add_handlers(".*$", [(pattern, ActivityHandler, {"serverapp": serverapp})])
