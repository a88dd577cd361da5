"""Let ssh, Jupyter and mosh through the box's firewall, and nothing else; never close anything.

What padlab finds decides what it does:

- ufw active: ``ufw allow`` rules, commented ``padlab:...``;
- an nftables input chain that drops (policy drop, or a final drop/reject):
  accept rules added after the admin's own rules, before that final drop/reject,
  commented ``padlab:...``, so an admin's drop of an address still wins.
  A table of padlab's own would not do: an accept in one table does not stop
  another table's chain from dropping the packet;
- no active firewall: nothing, unless the profile asked for one (``enable``).
  Then ufw when it is installed, else an ``inet padlab`` table whose input
  chain drops everything but established traffic, loopback, ICMP, DHCP, ssh,
  Jupyter and mosh.

ssh is always allowed from anywhere on every port sshd listens on, so it never
becomes less reachable; ``allow_from`` narrows only the Jupyter and mosh rules.
The resolved rules are saved to /var/lib/padlab/firewall/firewall.json, and for
nftables a oneshot unit (run after nftables.service, re-run when it restarts)
applies them again at boot. That unit runs as root, so everything it loads (the
rules, a copy of the box program, its runner) lives in that root-owned folder and
runs with ``python3 -I``: Jupyter's user, who owns /opt/padlab and /etc/padlab,
can change none of it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import sys

from .. import packages
from ..report import BoxError, Report
from ..system import ROOT_DIR, Host

TAG = "padlab:"
TABLE = "padlab"
UNIT = "padlab-firewall.service"
DIR = os.path.join(ROOT_DIR, "firewall")
SPEC = os.path.join(DIR, "firewall.json")
PROGRAM = os.path.join(DIR, "padlab_box.pyz")
RUNNER = os.path.join(DIR, "padlab-firewall")
BASE_RULES = [
    ("ct state established,related accept", "established"),
    ('iif "lo" accept', "loopback"),
    ("meta l4proto { 1, 58 } accept", "icmp"),  # ICMP, ICMPv6 (names need /etc/protocols)
    ("udp dport { 68, 546 } accept", "dhcp"),
]


# -- what to allow ------------------------------------------------------------------------


def wanted(spec: dict, jupyter_port: int, mosh: dict | None, ssh_ports: list) -> list:
    """The rules for this box, with 'auto' resolved to the client's address as the box sees it."""
    source = _source(spec.get("allow_from"))
    rules = [_rule("ssh", "tcp", str(port), None) for port in sorted(set(ssh_ports))]
    rules.append(_rule("jupyter", "tcp", str(jupyter_port), source))
    if mosh:
        lo, hi = mosh["ports"]
        rules.append(_rule("mosh", "udp", "%d-%d" % (lo, hi), source))
    return rules


def _rule(name: str, proto: str, ports: str, source: str | None) -> dict:
    comment = "%s%s:%s:%s:%s" % (TAG, name, proto, ports, source or "any")
    return {"name": name, "proto": proto, "ports": ports, "source": source, "comment": comment}


def _source(allow_from: str | None) -> str | None:
    if not allow_from:
        return None
    if allow_from == "auto":
        client = (os.environ.get("SSH_CONNECTION") or "").split()
        if not client:
            raise BoxError(
                "--allow-from auto needs the client's address, and this is not an ssh session",
                "give the network instead: padlab init NAME --allow-from 203.0.113.0/24 --force",
            )
        allow_from = client[0]
    try:
        return str(ipaddress.ip_network(allow_from, strict=False))
    except ValueError as exc:
        raise BoxError("bad allow_from %r" % allow_from, "give a CIDR such as 203.0.113.0/24") from exc


def ssh_ports(host: Host) -> list:
    """The port this session came in on, and every port sshd listens on."""
    found = set()
    conn = (os.environ.get("SSH_CONNECTION") or "").split()
    if len(conn) == 4:
        found.add(int(conn[3]))
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if os.path.exists(sshd):
        proc = host.run([sshd, "-T"], root=True, check=False)
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key == "port" and value.strip().isdigit():
                found.add(int(value))
    return sorted(found) or [22]


# -- what is there ------------------------------------------------------------------------


def _ufw_state(host: Host) -> str | None:
    """'active', 'inactive', or None when ufw is not installed."""
    if not shutil.which("ufw") and not os.path.exists("/usr/sbin/ufw"):
        return None
    out = host.run(["ufw", "status"], root=True, check=False).stdout
    return "active" if "Status: active" in out else "inactive"


def _nft(host: Host) -> list | None:
    """nftables ruleset as a list of JSON objects; None when nft is not installed."""
    if not (shutil.which("nft") or os.path.exists("/usr/sbin/nft")):
        return None
    proc = host.run(["nft", "-j", "list", "ruleset"], root=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return [item for item in json.loads(proc.stdout).get("nftables", []) if "metainfo" not in item]


def _dropping_chains(ruleset: list) -> list:
    """Input base chains outside padlab's table that drop what they do not accept."""
    chains = [
        i["chain"]
        for i in ruleset
        if "chain" in i
        and i["chain"].get("hook") == "input"
        and i["chain"].get("family") in ("ip", "ip6", "inet")
        and not (i["chain"]["family"] == "inet" and i["chain"]["table"] == TABLE)
    ]
    return [c for c in chains if c.get("policy") == "drop" or _final_drop(ruleset, c) is not None]


def _final_drop(ruleset: list, chain: dict) -> int | None:
    """The handle of the chain's last rule when it is a bare drop or reject (the chain's real end)."""
    rules = _rules_of(ruleset, chain)
    last = rules[-1]["expr"] if rules else []
    if len(last) == 1 and ("drop" in last[0] or "reject" in last[0]):
        return int(rules[-1]["handle"])
    return None


def _rules_of(ruleset: list, chain: dict) -> list:
    return [
        i["rule"]
        for i in ruleset
        if "rule" in i
        and (i["rule"]["family"], i["rule"]["table"], i["rule"]["chain"])
        == (chain["family"], chain["table"], chain["name"])
    ]


def _has_table(ruleset: list) -> bool:
    return any(
        "table" in i and (i["table"]["family"], i["table"]["name"]) == ("inet", TABLE) for i in ruleset
    )


# -- applying -----------------------------------------------------------------------------


def apply(host: Host, saved: dict, report: Report | None = None) -> tuple:
    """Make the firewall match saved {"rules": [...], "enable": bool}; returns (backend, changed)."""
    rules, enable = saved["rules"], bool(saved.get("enable"))
    ufw = _ufw_state(host)
    ruleset = _nft(host)
    if ruleset is not None and _has_table(ruleset):
        if enable:
            return "nftables (padlab table)", _apply_table(host, ruleset, rules)
        host.run(["nft", "delete", "table", "inet", TABLE], root=True)
        ruleset = _nft(host) or []
        changed = True
    else:
        changed = False
    if ufw == "active":
        return "ufw", _apply_ufw(host, rules) or changed
    chains = _dropping_chains(ruleset or [])
    if chains:
        return "nftables", _apply_insert(host, ruleset or [], chains, rules) or changed
    if not enable:
        return "none", changed
    if ufw == "inactive":
        _apply_ufw(host, rules)
        host.run(["ufw", "--force", "enable"], root=True)
        return "ufw (turned on by padlab)", True
    if ruleset is None:
        if report is None:
            raise BoxError("nft is missing", "run `padlab up` again")
        packages.install(host, ["nftables"], report, "firewall")
        ruleset = _nft(host) or []
    return "nftables (padlab table)", _apply_table(host, ruleset, rules)


def _match(rule: dict, family: str) -> str | None:
    """nft match for a rule in a chain of this family; None when the source's family cannot match."""
    parts = []
    if rule["source"]:
        v6 = ipaddress.ip_network(rule["source"]).version == 6
        if (family == "ip" and v6) or (family == "ip6" and not v6):
            return None
        parts.append("%s saddr %s" % ("ip6" if v6 else "ip", rule["source"]))
    parts.append("%s dport %s" % (rule["proto"], rule["ports"]))
    return " ".join(parts)


def _stale(comment: str, wanted: object) -> bool:
    """A padlab rule no longer wanted; ssh rules are never removed (ufw may share them with the admin's)."""
    return comment not in wanted and not comment.startswith(TAG + "ssh:")  # type: ignore[operator]


def _nft_script(host: Host, lines: list) -> None:
    host.run(["nft", "-f", "-"], root=True, input="\n".join(lines) + "\n")


def _apply_insert(host: Host, ruleset: list, chains: list, rules: list) -> bool:
    """padlab's accepts after the admin's own rules (their drops of an address still win), before
    the chain's final drop/reject. A rule an older padlab put above the admin's is moved down,
    except ssh's, which never becomes less reachable."""
    script = []
    for chain in chains:
        family, where = chain["family"], "%s %s %s" % (chain["family"], chain["table"], chain["name"])
        want = {r["comment"]: m for r in rules for m in [_match(r, family)] if m}
        end = _final_drop(ruleset, chain)
        body = [r for r in _rules_of(ruleset, chain) if r["handle"] != end]
        ours = [str(r.get("comment", "")).startswith(TAG) for r in body]
        last_admin = max((i for i, mine in enumerate(ours) if not mine), default=-1)
        have = {}
        for i, r in enumerate(body):
            comment = r.get("comment")
            if not ours[i]:
                continue
            if _stale(comment, want) or (i < last_admin and not comment.startswith(TAG + "ssh:")):
                script.append("delete rule %s handle %d" % (where, r["handle"]))
            else:
                have[comment] = r["handle"]
        verb = "add rule %s" % where if end is None else "insert rule %s position %d" % (where, end)
        script += ['%s %s accept comment "%s"' % (verb, m, c) for c, m in want.items() if c not in have]
    if script:
        _nft_script(host, script)
    return bool(script)


def table_text(rules: list) -> str:
    lines = [
        "table inet %s {" % TABLE,
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
    ]
    lines += ['    %s comment "%sbase:%s"' % (match, TAG, name) for match, name in BASE_RULES]
    lines += ['    %s accept comment "%s"' % (_match(r, "inet"), r["comment"]) for r in rules]
    return "\n".join(lines + ["  }", "}"])


def _apply_table(host: Host, ruleset: list, rules: list) -> bool:
    want = {"%sbase:%s" % (TAG, name) for _, name in BASE_RULES} | {r["comment"] for r in rules}
    have = {
        i["rule"].get("comment")
        for i in ruleset
        if "rule" in i and (i["rule"]["family"], i["rule"]["table"]) == ("inet", TABLE)
    }
    if _has_table(ruleset) and have == want:
        return False
    # One transaction: the old table goes and the new one comes, with no moment unprotected.
    _nft_script(host, ["table inet %s {}" % TABLE, "delete table inet %s" % TABLE, table_text(rules)])
    return True


def _ufw_args(rule: dict) -> list:
    ports = rule["ports"].replace("-", ":")
    return ["proto", rule["proto"], "from", rule["source"] or "any", "to", "any", "port", ports]


def _apply_ufw(host: Host, rules: list) -> bool:
    added = host.run(["ufw", "show", "added"], root=True, check=False).stdout
    changed = False
    for line in added.splitlines():
        comment = line.split(" comment ")[-1].strip("'")
        if comment.startswith(TAG) and _stale(comment, {r["comment"] for r in rules}):
            spec = line.split("ufw ", 1)[1].split(" comment ")[0].split()
            host.run(["ufw", "delete"] + spec, root=True, check=False)
            changed = True
    for rule in rules:
        if "'%s'" % rule["comment"] not in added:
            host.run(["ufw", "allow"] + _ufw_args(rule) + ["comment", rule["comment"]], root=True)
            changed = True
    return changed


# -- the step and the boot-time unit ------------------------------------------------------


def unit_text(python: str) -> str:
    return """[Unit]
Description=padlab: let ssh, Jupyter and mosh through the firewall
After=nftables.service
PartOf=nftables.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={python} -I {runner} {spec}

[Install]
WantedBy=multi-user.target nftables.service
""".format(python=python, runner=RUNNER, spec=SPEC)


def runner_script(python: str) -> str:
    """What the unit runs: root's own copy of the box program, never the workstation's."""
    return """#!{python} -I
# Written by padlab: apply the saved firewall rules again (padlab-firewall.service).
import sys
sys.path.insert(0, {program!r})
from padlab_box.net.firewall import main
sys.exit(main(sys.argv[1:]))
""".format(python=python, program=PROGRAM)


def ensure(host: Host, req: dict, program: bytes, report: Report) -> None:
    """The bootstrap step: resolve, save, apply, and keep applying at boot for nftables."""
    spec = req["firewall"]
    rules = wanted(spec, int(req["port"]), req["mosh"], ssh_ports(host))
    saved = {"rules": rules, "enable": bool(spec.get("enable"))}
    host.makedirs(ROOT_DIR, mode=0o755, root=True)
    host.makedirs(DIR, mode=0o755, root=True)
    changed = host.write(SPEC, json.dumps(saved, indent=2, sort_keys=True) + "\n", mode=0o644, root=True)
    legacy = os.path.join(req["etc"], "firewall.json")  # where the Jupyter user could rewrite it
    if os.path.exists(legacy):
        host.run(["rm", "-f", legacy], root=True)
    backend, applied = apply(host, saved, report)
    if backend.startswith("nftables"):
        if program:
            changed |= host.write(PROGRAM, program, mode=0o644, root=True)
        changed |= host.write(RUNNER, runner_script(sys.executable), mode=0o755, root=True)
        unit = "/etc/systemd/system/%s" % UNIT
        if host.write(unit, unit_text(sys.executable), mode=0o644, root=True):
            host.run(["systemctl", "daemon-reload"], root=True)
            changed = True
        if host.run(["systemctl", "is-enabled", UNIT], check=False).stdout.strip() != "enabled":
            host.run(["systemctl", "enable", UNIT], root=True)
            changed = True
        if host.run(["systemctl", "is-active", UNIT], check=False).stdout.strip() != "active":
            host.run(["systemctl", "start", UNIT], root=True)
    opened = ", ".join(
        "%s %s/%s from %s" % (r["name"], r["ports"], r["proto"], r["source"] or "any") for r in rules
    )
    detail = "no active firewall: nothing to open" if backend == "none" else "%s: %s" % (backend, opened)
    report.step("firewall", changed or applied, detail)


def main(argv: list) -> int:
    """Boot-time entry (the padlab-firewall unit): apply the saved rules again."""
    with open(argv[0]) as fh:
        saved = json.load(fh)
    apply(Host(sudo=False), saved)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
