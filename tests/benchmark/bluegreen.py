# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Blue/green benchmark (prints figures; not a test): a change of mtg behind HAProxy, of its configuration and of its
release, applied by restarting mtg (the naive way: tgproxy_mtg_blue_green=false) and blue/green (the default), under
the same client load, interleaved in rounds on the same host so that machine noise hits both alike; medians over the
rounds.

The host is the `haproxy` Molecule scenario's Debian 13 host (HAProxy 3.0, mtg, Caddy), converged by
tests/benchmark/bluegreen.sh. The load is tests/testbed/migration_load.py through :443: 520 FakeTLS sessions with
the secret exchanging data with the DC simulator, every byte checked (80 % living 5-20 s and replaced, 20 % until
the end), plus 100 new connections per second, each a handshake and an echo. Each configuration change sets another
mtg_tolerate_time_skewness; each release change moves mtg_version between the test bed's two releases (an upgrade,
then a downgrade: tests/testbed/artifacts.sh builds the second from the same source), so every run has a change to
apply. The drain deadline is 25 s.

Per run: failed new connections, broken sessions (closed by the server, corrupt or timed out; the long sessions a
blue/green drain closes at its deadline are counted apart, the naive restart's are broken), bytes lost (in flight
in a broken session, or echoed wrong), the longest gap between accepted new connections, and the sessions closed
at the deadline.

    python3 tests/benchmark/bluegreen.py [--rounds 3] [--change config,version]
    python3 tests/benchmark/bluegreen.py --scenario mtg_direct   # mtg on :443: the restart alone (host converged)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(PROJECT, "tests", "testbed"))
import migration_load  # noqa: E402  pylint: disable=wrong-import-position

DEADLINE = 25
# --scenario mtg_direct: the restart alone, with mtg on :443 (no router: no blue/green to compare with)
SETUP = {"scenario": "haproxy", "host": "haproxy-debian13"}


def sh(*cmd):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout.strip()


def ephemeral_dir():
    return sh("bash", "-c", "ls -dt /root/.ansible/tmp/molecule.*.%s | head -1" % SETUP["scenario"])


def playbook(extra):
    ephemeral = ephemeral_dir()
    cmd = ["ansible-playbook", "-i", os.path.join(ephemeral, "inventory"), "--limit", SETUP["host"],
           os.path.join(PROJECT, "molecule", SETUP["scenario"], "converge.yml")]
    for item in extra:
        cmd += ["-e", item]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ephemeral, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               MOLECULE_EPHEMERAL_DIRECTORY=ephemeral)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError("converge failed:\n%s" % (proc.stdout + proc.stderr)[-4000:])


# the test bed's two mtg releases (tests/testbed/config.sh; tests/testbed/env.sh exports them)
RELEASES = (os.environ["TGP_MTG_VERSION"], os.environ["TGP_MTG_UPGRADE_VERSION"])


def measure(way, change):
    """One change under the load; ``change`` is the extra variables that make it."""
    address = sh("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", SETUP["host"])
    secret = sh("docker", "exec", SETUP["host"], "cat", "/etc/mtg/secret")
    extra = list(change) + ["tgproxy_mtg_drain_deadline=%d" % DEADLINE]
    if way == "restart":
        extra.append("tgproxy_mtg_restart_ok=true")
        if SETUP["scenario"] == "haproxy":
            extra.append("tgproxy_mtg_blue_green=false")
    load = migration_load.Run(tempfile.mkdtemp(prefix="tgp-bluegreen-"), address, 443, secret)
    started = time.time()
    try:
        playbook(extra)
        took = time.time() - started
        time.sleep(5)  # the load goes on through what the change left
    finally:
        result = load.finish()
    sessions = result["sessions"]
    deliberate = way == "blue/green"
    closes = [c for c in result["server_closes"] if not (deliberate and c[1] == "long")]
    broken = len(closes) + sum(g.get(o, 0) for g in sessions.values() for o in ("corrupt", "timeout", "open_failed"))
    return {"way": way, "failed_new": result["new"]["failed"], "new": result["new"]["failed"] + result["new"]["ok"],
            "broken": broken, "bytes_lost": sum(c[2] for c in closes) + result["bytes"]["corrupt"],
            "longest_gap_s": result["new"]["longest_gap_s"] or 0.0,
            "closed_at_deadline": sessions["long"].get("closed_by_server", 0) if deliberate else 0,
            "run_s": round(took, 1), "peak_open": result["peak_open"],
            "echoed_mib": round(result["bytes"]["echoed"] / 1048576.0, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", default="haproxy", choices=["haproxy", "mtg_direct"])
    parser.add_argument("--from-log", metavar="FILE",
                        help="print the tables again from the JSON rows a run printed (no host needed)")
    parser.add_argument("--change", default="config,version",
                        help="what each run changes, comma-separated: config (mtg_tolerate_time_skewness), version "
                             "(mtg_version, upgrade and downgrade in turn)")
    args = parser.parse_args()
    kinds = [kind for kind in args.change.split(",") if kind]
    if not kinds or set(kinds) - {"config", "version"}:
        parser.error("--change: config, version or both")
    SETUP.update(scenario=args.scenario, host="%s-debian13" % args.scenario)
    all_ways = ("restart", "blue/green") if args.scenario == "haproxy" else ("restart",)
    if args.from_log:
        with open(args.from_log) as handle:
            rows = [json.loads(line) for line in handle if line.startswith("{")]
        summarise(rows, [kind for kind in kinds if any(row["change"] == kind for row in rows)], all_ways,
                  max(row["round"] for row in rows))
        return 0
    rows = []
    state = {"skew": 6, "release": 0}

    def change_of(kind):
        if kind == "config":
            state["skew"] += 1
        else:
            state["release"] = 1 - state["release"]
        return ["mtg_tolerate_time_skewness=%ds" % state["skew"], "mtg_version=" + RELEASES[state["release"]]]

    for number in range(args.rounds):
        # alternate which way goes first, so neither always runs on a fresher host
        ways = all_ways if number % 2 == 0 else tuple(reversed(all_ways))
        for kind in kinds:
            for way in ways:
                extra = change_of(kind)
                row = measure(way, extra)
                row.update(round=number + 1, change=kind, release=extra[-1].split("=")[1])
                rows.append(row)
                print(json.dumps(row), flush=True)
    # back to the inventory's settings, with the same deadline (not the default 600 s)
    playbook(["tgproxy_mtg_drain_deadline=%d" % DEADLINE])
    summarise(rows, kinds, all_ways, args.rounds)
    return 0


def summarise(rows, kinds, all_ways, rounds):
    keys = ("failed_new", "broken", "bytes_lost", "longest_gap_s", "closed_at_deadline", "run_s")
    header = ("| change | way (median of %d rounds) | failed new connections | broken sessions | bytes lost "
              "| longest gap between accepted connections | sessions closed at the %d s deadline | run |")
    print("\n" + header % (rounds, DEADLINE))
    print("|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        for way in all_ways:
            mine = [row for row in rows if row["way"] == way and row["change"] == kind]
            med = dict((key, statistics.median(row[key] for row in mine)) for key in keys)
            print("| %s | %s | %g of %g | %g | %g | %.2f s | %g | %.0f s |" % (
                {"config": "configuration", "version": "release (up, down)"}[kind], way, med["failed_new"],
                statistics.median(row["new"] for row in mine), med["broken"], med["bytes_lost"],
                med["longest_gap_s"], med["closed_at_deadline"], med["run_s"]))
    print("\nEach run: " + "; ".join("%d %s %s (to %s): %d/%d/%d, gap %.2f s" % (
        row["round"], row["change"], row["way"], row["release"], row["failed_new"], row["broken"], row["bytes_lost"],
        row["longest_gap_s"]) for row in rows))


if __name__ == "__main__":
    sys.exit(main())
