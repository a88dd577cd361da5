"""Autostop on the box: the agent that a timer, cron or a loop runs (``agent``), its idle signals
(``activity.PROBES``), its stops (``stops.STOPS``, one module per provider's own stop), its
alerts, the Jupyter extension it reads (``agent_ext``), its installer (``agent_setup``) and the
``autostop``, ``keep`` and ``logs`` actions. Imports only box's shared modules (and ``files.jobs``,
the download probe): the agent runs every few seconds from its own copy of the program.
"""
