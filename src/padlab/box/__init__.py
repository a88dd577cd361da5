"""The program padlab runs ON THE BOX.

Standard library only, Python >= 3.8: it must run on any stock image before
anything is installed. The client ships this package as a zip over stdin
(``padlab.transport``) and the same code serves the local machine and every
remote provider. The modules in VENV_MODULES need the box's Jupyter environment
and run only with its interpreter (or inside Jupyter); the bootstrap never imports them.
``setup.acme_client`` runs in padlab's root-owned ACME venv instead (box/setup/acme_setup.py).

The top level holds the entry (``__main__``), the request schema and what every part
shares (report, host, layout and Jupyter's service, account, lock, venvs, packages,
durations); each subpackage is one concern: ``setup`` (`up` and its steps), ``autostop``
(the agent), ``kernels``, ``files`` (downloads), ``net`` (firewall, mosh, ports).
"""

# Dotted from padlab.box, as the zip's padlab_box/ names them.
VENV_MODULES = (
    "setup.keygen",
    "autostop.agent_ext",
    "setup.login_guard",
    "setup.http_front",
    "setup.acme_client",
)
