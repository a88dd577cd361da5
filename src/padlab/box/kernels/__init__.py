"""The box's Python environments as Jupyter kernels: discovery and registration at `up`, the
``kernels`` and ``kernel-create`` actions. Imports only box's shared modules.
"""
