"""The program padlab runs ON THE BOX.

Standard library only, Python >= 3.8: it must run on any stock image before
anything is installed. The client ships this package as a zip over stdin
(``padlab.transport``) and the same code serves the local machine and every
remote provider. The modules in VENV_MODULES need the box's Jupyter environment
and run only with its interpreter (or inside Jupyter); the bootstrap never imports them.
``acme_client`` runs in padlab's root-owned ACME venv instead (box/acme_setup.py).
"""

VENV_MODULES = ("keygen", "agent_ext", "login_guard", "http_front", "acme_client")
