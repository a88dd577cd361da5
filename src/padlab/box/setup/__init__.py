"""`up` and its steps (``bootstrap``: up, down, status, passwd): the fingerprint of a no-op `up`,
Jupyter's config and login form, its health, the TLS certificate (padlab's CA, or ACME in root's
venv), a container's boot copy, the ``--clone`` folder. The one part of box that may import every
other: `up` composes the kernels, files, net and autostop steps.
"""
