"""A small HTTP server for `padlab get` tests and benchmarks: ranges, validators, and faults on purpose.

It serves byte strings from memory with a strong ETag and a Last-Modified,
answers ``Range: bytes=N-`` with 206 (or 200 when ``If-Range`` no longer
matches), and records every request so a test can check that a download
resumed instead of starting again. Faults: `drop_after[path] = N` closes the
first response for path after N body bytes; `rate` throttles every response
(bytes per second); clearing `flowing` holds every response mid-body; `no_length` serves a path without Content-Length or ranges;
`no_validators` serves a path with ranges but neither ETag nor Last-Modified; `ignore_if_range`
answers a Range with 206 even when If-Range no longer matches (a broken server).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RANGE = re.compile(r"^bytes=(\d+)-$")
CHUNK = 1 << 20


class RangeServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.files: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}
        self.modified = email.utils.formatdate(time.time() - 3600, usegmt=True)
        self.drop_after: dict[str, int] = {}
        self.no_length: set[str] = set()
        self.no_validators: set[str] = set()
        self.ignore_if_range: set[str] = set()
        self.rate: float | None = None
        self.flowing = threading.Event()  # clear it to hold every response where it is
        self.flowing.set()
        self.requests: list[dict[str, Any]] = []
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> RangeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, data: bytes) -> str:
        """Serve data at path (a new ETag each time); returns its URL."""
        self.files[path] = data
        self.etags[path] = f'"{hashlib.sha256(data).hexdigest()[:20]}"'
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requests_for(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                data = server.files.get(path)
                record = {
                    "path": path,
                    "range": self.headers.get("Range"),
                    "if_range": self.headers.get("If-Range"),
                    "time": time.time(),
                }
                with server._lock:
                    server.requests.append(record)
                if data is None:
                    record["status"] = 404
                    self.send_error(404)
                    return
                start = 0
                match = RANGE.match(self.headers.get("Range") or "")
                if_range = self.headers.get("If-Range")
                fresh = path in server.ignore_if_range or if_range in (None, server.etags[path], server.modified)
                ranged = path not in server.no_length and match and fresh and int(match.group(1)) < len(data)
                if ranged:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                record["status"] = 206 if ranged else 200
                record["start"] = start
                if path not in server.no_length:
                    self.send_header("Content-Length", str(len(data) - start))
                    self.send_header("Accept-Ranges", "bytes")
                if path not in server.no_length and path not in server.no_validators:
                    self.send_header("ETag", server.etags[path])
                    self.send_header("Last-Modified", server.modified)
                self.send_header("Connection", "close")
                self.end_headers()
                limit = server.drop_after.pop(path, None)
                end = len(data) if limit is None else min(len(data), start + limit)
                self._send(data, start, end, path)
                if limit is not None:
                    self.close_connection = True

            def _send(self, data: bytes, start: int, end: int, path: str) -> None:
                view = memoryview(data)
                pos = start
                t0 = time.monotonic()
                while pos < end:
                    server.flowing.wait()
                    step = CHUNK if not server.rate else max(1024, int(server.rate / 20))
                    chunk = view[pos : min(end, pos + step)]
                    try:
                        self.wfile.write(chunk)
                    except OSError:
                        return
                    pos += len(chunk)
                    with server._lock:
                        server.sent[path] = server.sent.get(path, 0) + len(chunk)
                    if server.rate:
                        ahead = (pos - start) / server.rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)

        return Handler
