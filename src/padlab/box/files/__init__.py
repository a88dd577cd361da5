"""Files and downloads: the ``get`` and ``paths`` actions and the rsync step, download jobs
(``jobs``, light: the agent reads them), the job itself (``download``) and safe unpacking.
Imports only box's shared modules.
"""
