# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tcp_drain against /proc/net/tcp and ss stand-ins (real connections are drained in Molecule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils import basic

from ansible_collections.tgproxy.stealth.plugins.modules import tcp_drain as mod
from module_harness import patch_exits, run_main

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def row(local, remote):
    return "   0: %s %s 01 00000000:00000000 02:00 00000000   108        0 1\n" % (local, remote)


# the old mtg on 127.0.0.1:3128 (0C38): three router connections
TABLE = HEADER + row("0100007F:0C38", "0100007F:E001") + row("0100007F:0C38", "0100007F:E002") \
    + row("0100007F:0C38", "0100007F:E003")
# the new mtg (mtg-green) holds two loops to 127.0.0.1:443 that the router sent to the old one before the switch,
# and one made after it (49136), which reached the new one; the old mtg's own loop went elsewhere
SS = "\n".join("0 0 127.0.0.1:%d 127.0.0.1:443 uid:997 ino:1 sk:1 cgroup:/system.slice/%s <->" % loop
               for loop in ((49122, "mtg-green.service"), (49124, "mtg-green.service"), (49136, "mtg-green.service"),
                            (49140, "mtg.service")))


def drain(tmp_path, monkeypatch, **args):
    table = tmp_path / "tcp"
    table.write_text(TABLE)
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(argv)
        return 0, SS, ""

    monkeypatch.setattr(mod, "TABLES", (str(table),))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    patch_exits(monkeypatch)
    result = run_main(mod.main, dict(dict(port=3128, deadline=0), **args))
    return result, calls


def test_only_the_new_units_loops_open_at_the_switch_are_left_out_of_the_old_instances_count(tmp_path, monkeypatch):
    """Without ``loops`` every loop of the unit is left out: the one the new instance got after the switch would
    hide one of the old instance's sessions. With the loops a count at the switch returned, only those are."""
    plain, calls = drain(tmp_path, monkeypatch)
    assert (plain["at_start"], plain["loops"], calls) == (3, [], [])
    every, calls = drain(tmp_path, monkeypatch, loops_unit="mtg-green")
    assert every["at_start"] == 0 and every["loops"] == ["127.0.0.1:49122", "127.0.0.1:49124", "127.0.0.1:49136"]
    assert calls == [["/usr/bin/ss", "-Htne", "state", "established", "( dport = :443 )"]]
    at_switch = ["127.0.0.1:49122", "127.0.0.1:49124", "127.0.0.1:49999"]  # the last one has ended since
    only, calls = drain(tmp_path, monkeypatch, loops_unit="mtg-green", loops=at_switch)
    assert (only["at_start"], only["remaining"], only["loops"]) == (1, 1, ["127.0.0.1:49122", "127.0.0.1:49124"])


def test_loops_without_their_unit_are_refused(tmp_path, monkeypatch):
    failed, _calls = drain(tmp_path, monkeypatch, loops=["127.0.0.1:49122"])
    assert failed["failed"] and "loops_unit" in failed["msg"]
