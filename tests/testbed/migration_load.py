# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounded client load for a live-proxy migration (test bed only).

What a population of Telegram clients does to an mtg proxy, through the
public port, while a migration runs:

* ``--sessions`` long-lived FakeTLS sessions with the secret, each sending
  ``--chunk`` random bytes every ``--period`` seconds through mtg to the DC
  simulator (``dcsim.py``) and checking that every byte comes back.  A
  ``--short`` share of them live ``--short-life`` seconds (a range; shorter
  than the migration's drain deadline) and are replaced by a new session when
  they end; the others (the long group) live until the load stops.
* ``--rate`` new connections per second, each a FakeTLS handshake with the
  secret plus one echo, then closed.

Every session ends in one class: ``completed`` (its lifetime reached, every
byte back), ``closed_by_server`` (EOF or reset from the proxy side; bytes in
flight at that moment are counted as ``in_flight_lost``), ``corrupt`` (an
echo differed) or ``open_failed`` (the handshake failed).  A new connection
either succeeds or fails with its reason.  The run is bounded by
``--duration`` and stops early (cleanly) on SIGTERM/SIGINT or when
``--stop-file`` appears; then it prints one JSON summary on stdout:

    {"sessions": {...per group counts...}, "new": {"ok": N, "failed": N,
     "longest_gap_s": x, ...}, "bytes": {"sent": N, "echoed": N, ...},
     "server_closes": [[t, group], ...], "peak_open": N, ...}

    python migration_load.py --host 172.30.77.2 --port 443 --secret ee... \
        --sessions 520 --short 0.8 --short-life 5:20 --rate 100 --duration 600
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mtg_echo  # noqa: E402  pylint: disable=wrong-import-position

faketls = mtg_echo.load_faketls()


class Stats(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.sessions = {"short": {}, "long": {}, "reconnected": {}}
        self.open_now = 0
        self.peak_open = 0
        self.bytes = {"sent": 0, "echoed": 0, "in_flight_lost": 0, "corrupt": 0}
        self.server_closes = []
        self.new_ok = []
        self.new_failed = []
        self.errors = []

    def now(self):
        return time.monotonic() - self.t0

    def count(self, group, outcome):
        with self.lock:
            self.sessions[group][outcome] = self.sessions[group].get(outcome, 0) + 1

    def opened(self, delta):
        with self.lock:
            self.open_now += delta
            self.peak_open = max(self.peak_open, self.open_now)

    def error(self, text):
        with self.lock:
            if len(self.errors) < 30:
                self.errors.append([round(self.now(), 2), text])


def open_session(args, key, domain):
    conn, result = faketls.open_faketls(args.host, args.port, key, domain, timeout=args.timeout)
    if conn is None:
        raise IOError("handshake failed at %s: %s" % (result["step"], result["error"]))
    conn.settimeout(args.timeout)
    frame, encryptor, decryptor = mtg_echo.client_obfuscated2(key, 2)
    conn.sendall(frame)
    return conn, encryptor, decryptor


def exchange(conn, encryptor, decryptor, size):
    """Send size random bytes as packets; (sent, echoed, identical). EOFError/OSError on a close."""
    stream = mtg_echo.frame_packets(os.urandom(size))
    conn.sendall(encryptor.update(stream))
    received = b""
    while len(received) < len(stream):
        data = conn.recv(65536)
        if not data:
            raise EOFError(len(stream) - len(received))
        received += decryptor.update(data)
    return len(stream), len(received), received == stream


def session(args, key, domain, stats, group, stop):
    """One client session; returns when its lifetime ends, the server closes it or the load stops.

    Returns False when the session could not be opened."""
    if group == "short":
        low, high = args.short_life
        life = random.uniform(low, high)
    else:  # long, reconnected: until the load stops
        life = float("inf")
    try:
        conn, encryptor, decryptor = open_session(args, key, domain)
    except (OSError, IOError, socket.timeout) as exc:
        stats.count(group, "open_failed")
        stats.error("%s session: %s" % (group, exc))
        return False
    stats.opened(1)
    started = time.monotonic()
    outcome = "completed"
    try:
        # spread the exchanges of many sessions over the period
        if stop.wait(random.uniform(0, args.period)):
            return True
        while time.monotonic() - started < life and not stop.is_set():
            pending = 0
            try:
                sent, echoed, same = exchange(conn, encryptor, decryptor, args.chunk)
            except EOFError as exc:
                pending = exc.args[0] if exc.args else 0
                outcome = "closed_by_server"
            except (OSError, socket.timeout) as exc:
                pending = args.chunk  # about what was in flight (the framing adds up to 19 bytes)
                outcome = "closed_by_server" if not isinstance(exc, socket.timeout) else "timeout"
                stats.error("%s session: %r" % (group, exc))
            if outcome != "completed":
                with stats.lock:
                    stats.bytes["in_flight_lost"] += pending
                    stats.server_closes.append([round(stats.now(), 2), group, pending])
                break
            with stats.lock:
                stats.bytes["sent"] += sent
                stats.bytes["echoed"] += echoed
            if not same:
                outcome = "corrupt"
                with stats.lock:
                    stats.bytes["corrupt"] += sent
                break
            if stop.wait(args.period):
                break
    finally:
        stats.opened(-1)
        stats.count(group, outcome)
        try:
            conn.close()
        except OSError:
            pass
    return True


def session_slot(args, key, domain, stats, group, stop):
    """A slot keeps one session open: a short one is replaced when it ends."""
    failures = 0
    while not stop.is_set():
        opened = session(args, key, domain, stats, group, stop) is not False
        if group != "short" and opened:
            # a client whose long session the server closed reconnects (the
            # new session is counted apart, in the group "reconnected")
            group = "reconnected"
        # like a client, back off while the proxy refuses (0.1 s doubling to 2 s)
        failures = 0 if opened else failures + 1
        stop.wait(0.05 if opened else min(2.0, 0.1 * 2 ** (failures - 1)))


def new_connection(args, key, domain, stats):
    started = stats.now()
    try:
        conn, encryptor, decryptor = open_session(args, key, domain)
        try:
            sent, echoed, same = exchange(conn, encryptor, decryptor, 64)
        finally:
            conn.close()
        if not same:
            raise IOError("echo differs")
        with stats.lock:
            stats.new_ok.append(stats.now())
    except (OSError, IOError, EOFError, socket.timeout) as exc:
        with stats.lock:
            stats.new_failed.append([round(started, 2), repr(exc)[:160]])


def summary(args, stats, started_wall):
    ok = sorted(stats.new_ok)
    gaps = [b - a for a, b in zip(ok, ok[1:])]
    longest = max(gaps) if gaps else None
    at = ok[gaps.index(longest)] if gaps else None
    return {
        "target": "%s:%d" % (args.host, args.port),
        "started": started_wall,
        "duration_s": round(stats.now(), 1),
        "sessions": stats.sessions,
        "peak_open": stats.peak_open,
        "bytes": stats.bytes,
        "server_closes": stats.server_closes,
        "new": {"ok": len(ok), "failed": len(stats.new_failed), "failures": stats.new_failed[:30],
                "rate": args.rate, "longest_gap_s": round(longest, 3) if longest is not None else None,
                "longest_gap_at_s": round(at, 2) if at is not None else None},
        "errors": stats.errors,
    }


class Run(object):
    """This script started in the background and waited for (for tests and benchmarks)."""

    def __init__(self, workdir, host, port, secret, **options):
        self.ready = os.path.join(str(workdir), "load-ready")
        self.stop_file = os.path.join(str(workdir), "load-stop")
        for path in (self.ready, self.stop_file):
            if os.path.exists(path):
                os.unlink(path)
        args = dict(sessions=520, short=0.8, short_life="5:20", rate=100, duration=900)
        args.update(options)
        cmd = [sys.executable, os.path.abspath(__file__), "--host", host, "--port", str(port), "--secret", secret,
               "--ready-file", self.ready, "--stop-file", self.stop_file]
        for key, value in args.items():
            cmd += ["--" + key.replace("_", "-"), str(value)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        deadline = time.time() + 120
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise RuntimeError("the load stopped: %s" % (self.proc.communicate(),))
            if time.time() > deadline:
                self.proc.kill()
                raise RuntimeError("the load did not open its sessions in 120 s")
            time.sleep(0.5)

    def finish(self):
        with open(self.stop_file, "w") as handle:
            handle.write("stop\n")
        out, err = self.proc.communicate(timeout=180)
        if self.proc.returncode != 0:
            raise RuntimeError("the load failed: %s" % err[-3000:])
        return json.loads(out)


def damage(result):
    """(failed new connections, broken sessions, bytes lost) of a run's summary.

    Broken: corrupt, timed out or failed to open, or closed by the server while
    it was not a long session of the old instance (those are closed on purpose
    at the drain deadline and counted apart).  Bytes lost: in flight in a
    broken session, or echoed wrong.
    """
    sessions = result["sessions"]
    bad = sum(group.get(outcome, 0) for group in sessions.values() for outcome in ("corrupt", "timeout", "open_failed"))
    bad += sessions["short"].get("closed_by_server", 0) + sessions["reconnected"].get("closed_by_server", 0)
    lost = sum(pending for when, group, pending in result["server_closes"] if group != "long")
    return result["new"]["failed"], bad, lost + result["bytes"]["corrupt"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--sessions", type=int, default=520)
    parser.add_argument("--short", type=float, default=0.8, help="share of short sessions (0-1)")
    parser.add_argument("--short-life", default="5:20", help="lifetime range of a short session, seconds")
    parser.add_argument("--period", type=float, default=2.0)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--rate", type=float, default=100.0, help="new connections per second")
    parser.add_argument("--duration", type=float, default=600.0, help="upper bound of the run, seconds")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--stop-file", default=None)
    parser.add_argument("--ready-file", default=None, help="written once every session slot has opened")
    parser.add_argument("--workers", type=int, default=48)
    args = parser.parse_args(argv)
    low, high = (float(x) for x in args.short_life.split(":"))
    args.short_life = (low, high)
    if not (0 < args.sessions <= 2000 and 0 <= args.rate <= 500 and 0 < args.duration <= 3600):
        parser.error("bounded load only: sessions 1-2000, rate 0-500/s, duration up to 3600 s")
    key, domain = mtg_echo.parse_secret(args.secret)

    stats = Stats()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *a: stop.set())
    started_wall = time.time()
    n_short = int(round(args.sessions * args.short))
    slots = []
    for index in range(args.sessions):
        group = "short" if index < n_short else "long"
        thread = threading.Thread(target=session_slot, args=(args, key, domain, stats, group, stop), daemon=True)
        thread.start()
        slots.append(thread)
        time.sleep(0.004)  # about 250 opens per second
    ready_written = False
    pool = ThreadPoolExecutor(max_workers=args.workers)
    interval = 1.0 / args.rate if args.rate else None
    next_at = time.monotonic()
    end = time.monotonic() + args.duration
    while not stop.is_set() and time.monotonic() < end:
        if args.stop_file and os.path.exists(args.stop_file):
            break
        if not ready_written and args.ready_file and stats.open_now >= args.sessions * 0.98:
            with open(args.ready_file, "w") as handle:
                handle.write("%d\n" % stats.open_now)
            ready_written = True
        if interval is None:
            stop.wait(0.2)
            continue
        pool.submit(new_connection, args, key, domain, stats)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()  # behind schedule: do not burst
    stop.set()
    pool.shutdown(wait=True)
    for thread in slots:
        thread.join(timeout=args.timeout + 5)
    json.dump(summary(args, stats, started_wall), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
