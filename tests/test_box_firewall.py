"""padlab.box.net.firewall's decisions, on recorded rulesets; the testbed tests apply them for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from padlab.box.net import firewall
from padlab.box.report import BoxError


class FakeHost:
    """Records nft scripts instead of running them."""

    def __init__(self) -> None:
        self.scripts: list[str] = []

    def run(self, cmd, root=False, check=True, input=None, **_):
        self.scripts.append(input or " ".join(cmd))
        return subprocess.CompletedProcess(cmd, 0, "", "")


def chain(family: str, table: str, policy: str = "accept", hook: str = "input") -> dict:
    return {
        "chain": {
            "family": family,
            "table": table,
            "name": "input",
            "handle": 1,
            "hook": hook,
            "policy": policy,
        }
    }


def rule(family: str, table: str, handle: int, expr: list, comment: str | None = None) -> dict:
    body = {"family": family, "table": table, "chain": "input", "handle": handle, "expr": expr}
    if comment:
        body["comment"] = comment
    return {"rule": body}


def test_auto_means_the_ssh_client_address(monkeypatch) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "198.18.4.1 50022 198.18.4.2 22")
    rules = firewall.wanted({"allow_from": "auto"}, 8888, {"ports": [60001, 60010]}, [22, 2222])
    assert [r["comment"] for r in rules] == [
        "padlab:ssh:tcp:22:any",
        "padlab:ssh:tcp:2222:any",
        "padlab:jupyter:tcp:8888:198.18.4.1/32",
        "padlab:mosh:udp:60001-60010:198.18.4.1/32",
    ]
    monkeypatch.delenv("SSH_CONNECTION")
    with pytest.raises(BoxError, match="auto"):
        firewall.wanted({"allow_from": "auto"}, 8888, None, [22])


def test_only_input_chains_that_drop_count() -> None:
    ruleset = [
        chain("inet", "filter", policy="drop"),
        chain("ip", "fw"),
        rule("ip", "fw", 5, [{"match": {}}, {"accept": None}]),
        rule("ip", "fw", 6, [{"reject": {"type": "icmp"}}]),
        chain("ip6", "open"),
        chain("inet", "padlab", policy="drop"),
        chain("inet", "out", policy="drop", hook="output"),
    ]
    found = [(c["family"], c["table"]) for c in firewall._dropping_chains(ruleset)]
    assert found == [("inet", "filter"), ("ip", "fw")]


def test_rules_go_only_where_their_address_family_can_match() -> None:
    v4 = firewall._rule("jupyter", "tcp", "8888", "203.0.113.0/24")
    assert firewall._match(v4, "ip6") is None
    assert firewall._match(v4, "inet") == "ip saddr 203.0.113.0/24 tcp dport 8888"
    v6 = firewall._rule("mosh", "udp", "60001-60010", "2001:db8::/64")
    assert firewall._match(v6, "ip") is None
    assert firewall._match(v6, "ip6") == "ip6 saddr 2001:db8::/64 udp dport 60001-60010"


def test_insert_adds_missing_and_removes_stale_padlab_rules_only() -> None:
    wanted = firewall.wanted({"allow_from": "198.18.0.0/24"}, 8888, None, [22])
    ruleset = [
        chain("inet", "filter", policy="drop"),
        rule("inet", "filter", 5, [{"accept": None}], "the admin's own"),
        rule("inet", "filter", 3, [{"accept": None}], "padlab:ssh:tcp:22:any"),
        rule("inet", "filter", 4, [{"accept": None}], "padlab:jupyter:tcp:8888:any"),
    ]
    host = FakeHost()
    assert firewall._apply_insert(host, ruleset, firewall._dropping_chains(ruleset), wanted) is True
    assert host.scripts == [
        "delete rule inet filter input handle 4\n"
        'add rule inet filter input ip saddr 198.18.0.0/24 tcp dport 8888 accept comment "padlab:jupyter:tcp:8888:198.18.0.0/24"\n'
    ]
    ruleset[3]["rule"]["comment"] = wanted[1]["comment"]
    assert firewall._apply_insert(FakeHost(), ruleset, firewall._dropping_chains(ruleset), wanted) is False


# An admin's ruleset: policy drop with an address blocklist, and a chain that ends in a reject.
# The padlab:jupyter rule at the top is where padlab put its rules before (`insert` at position 0).
ADMIN_RULESET = """
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    tcp dport 8888 accept comment "padlab:jupyter:tcp:8888:any"
    ct state established,related accept
    ip saddr 203.0.113.66 drop comment "blocklist"
    iif "lo" accept
  }
}
table ip legacy {
  chain input {
    type filter hook input priority 10; policy accept;
    ip saddr 198.51.100.9 drop comment "blocklist"
    reject comment "the end"
  }
}
"""

IN_NETNS = """
import json, sys
from padlab.box.net import firewall
from padlab.box.system import Host
host = Host(sudo=False)
host.run(["nft", "-f", "-"], input=sys.argv[1])
rules = firewall.wanted({}, 8888, {"ports": [60001, 60010]}, [22])
changed = []
for _ in range(2):
    ruleset = firewall._nft(host)
    changed.append(firewall._apply_insert(host, ruleset, firewall._dropping_chains(ruleset), rules))
print(json.dumps({"changed": changed, "ruleset": firewall._nft(host)}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace of its own")
def test_accepts_go_after_the_admins_rules_so_a_blocklist_still_wins() -> None:
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", IN_NETNS, ADMIN_RULESET],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["changed"] == [True, False]
    order = {}
    for item in out["ruleset"]:
        if "rule" in item:
            r = item["rule"]
            order.setdefault(r["table"], []).append(r.get("comment") or "?")
    padlab = ["padlab:ssh:tcp:22:any", "padlab:jupyter:tcp:8888:any", "padlab:mosh:udp:60001-60010:any"]
    assert order["filter"] == ["?", "blocklist", "?", *padlab]
    assert order["legacy"] == ["blocklist", *padlab, "the end"]


def test_own_table_drops_all_but_basics_and_the_wanted_ports() -> None:
    text = firewall.table_text(
        firewall.wanted({"allow_from": "203.0.113.7"}, 9999, {"ports": [60001, 60010]}, [22])
    )
    assert "policy drop;" in text
    assert 'tcp dport 22 accept comment "padlab:ssh:tcp:22:any"' in text
    assert "ip saddr 203.0.113.7/32 tcp dport 9999 accept" in text
    assert "ip saddr 203.0.113.7/32 udp dport 60001-60010 accept" in text
    assert "ct state established,related accept" in text


def test_nothing_is_done_without_a_firewall_unless_asked(monkeypatch) -> None:
    monkeypatch.setattr(firewall, "_ufw_state", lambda host: None)
    monkeypatch.setattr(firewall, "_nft", lambda host: [])
    host = FakeHost()
    assert firewall.apply(host, {"rules": [], "enable": False}) == ("none", False)
    assert host.scripts == []
