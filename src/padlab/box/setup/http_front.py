"""A Jupyter server extension: Jupyter's own app, served a second time over plain HTTP on one port.

Why: a cloud's HTTPS proxy (RunPod's ``https://{podId}-{port}.proxy.runpod.net``, with a
publicly trusted certificate, so an iPad needs no CA profile) speaks plain HTTP to the
machine's port. Jupyter serves TLS only, on its own port, so this extension listens on
``PadlabHttpFront.port`` with the same web application: the same password login (and its
backoff, per proxy address), the same XSRF checks, the same kernels and websockets. It
runs only where the provider asks for it (the request's ``proxy_port``), for a port that
provider reaches only through its proxy, never on a public address: on RunPod that port is
exposed as ``/http`` only, not mapped to the pod's public IP.

It runs inside Jupyter's environment (installed there as ``padlab_http_front``), not in the
stdlib-only box program.
"""

SECTION = "PadlabHttpFront"


def _jupyter_server_extension_points():
    return [{"module": "padlab_http_front"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from tornado import httpserver

    port = (serverapp.config.get(SECTION) or {}).get("port")
    if not port:
        return
    server = httpserver.HTTPServer(
        serverapp.web_app,
        xheaders=False,  # a forwarded-for header is the client's to forge; the proxy's address counts
        max_body_size=serverapp.max_body_size,
        max_buffer_size=serverapp.max_buffer_size,
    )
    try:
        server.listen(int(port), serverapp.ip)
    except OSError as exc:  # Jupyter's own port still serves; the log says why the proxy cannot
        serverapp.log.error("padlab: the HTTP port %s for the cloud's proxy is unavailable: %s", port, exc)
        return
    serverapp.log.info("padlab: serving Jupyter over plain HTTP on port %s for the cloud's proxy only", port)
