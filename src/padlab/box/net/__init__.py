"""The network: the firewall's rules (and the unit that applies them at boot), mosh, and which
process holds a port. Imports only box's shared modules.
"""
