"""How often a kernel leaves a fresh connection's first request unread (ipython/ipykernel#1554).

    /opt/padlab/venv/bin/python benchmarks/kernel_hang.py [--runs 1000]

Run it with the python of a Jupyter venv (it needs that venv's jupyter_client and ipykernel).
Each run does what jupyter_server does for every new kernel websocket: a kernel_info_request
on a new shell channel and one on the control channel, the shell channel closed once control
answers; then code on the kept shell channel, whose reply must come within 5 s. ipykernel 7.0
to 7.3 sends shell replies raw on the ROUTER socket, and a request that lands meanwhile stays
unread until another one wakes the socket: in a notebook, a first cell that never runs.
Measured on the 2-core dev box, 2026-12-03: ipykernel 7.3.0 left 2 of 7300 runs hung (1 of 300,
1 of 1000, 0 of 3000, 0 of 3000 in another variant); 6.31.0 (padlab's lock since) 0 of 4000.
"""

from __future__ import annotations

import argparse
import queue

from jupyter_client import KernelManager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    import ipykernel

    hung = []
    try:
        for run in range(args.runs):
            nudge, control = km.connect_shell(), km.connect_control()
            kc.session.send(nudge, "kernel_info_request")
            kc.session.send(control, "kernel_info_request")
            control.poll(5000)
            control.recv_multipart()
            control.close(linger=0)
            nudge.close(linger=0)
            kc.execute("1", silent=True)
            try:
                kc.get_shell_msg(timeout=5)
            except queue.Empty:
                hung.append(run)
                kc.kernel_info()  # any later request wakes the socket: both replies come
                for _ in range(2):
                    kc.get_shell_msg(timeout=5)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(f"ipykernel {ipykernel.__version__}: {len(hung)} of {args.runs} first requests unanswered {hung}")


if __name__ == "__main__":
    main()
