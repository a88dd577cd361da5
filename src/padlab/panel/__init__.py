"""The web control panel: start, stop and connect to workstations from an iPad, plus a token API.

It runs on the machine that holds padlab's profiles, CA and cloud keys (docs/panel.md).
Nothing here is imported by `padlab --help` or `status`: the web stack loads only
when `padlab panel` runs.
"""
