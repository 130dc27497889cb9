"""Capacity benchmark of the routers as the collection configures them, side by
side with the seed's minimal configs on the same daemons, in the same run.

Runs against the `benchmark` Molecule host (tests/benchmark/run.sh creates and
converges it). All traffic stays on the container's loopback. Prints a
Markdown table; exits non-zero only when the benchmark itself could not run.

    python3 tests/benchmark/capacity.py [--connections 10000] [--container benchmark-debian12]
"""

import argparse
import json
import re
import subprocess
import sys
import statistics
import time

DIRECT_PORT = 3128  # the sink that stands in for mtg
ROUTERS = [
    # name, port, how to find its processes, connections to hold (HAProxy is
    # one process with two files per session under this machine's hard limit
    # of 20000 open files; nginx spreads sessions over its workers)
    ("HAProxy, collection", 443, "unit:haproxy", "haproxy", "systemctl restart haproxy"),
    ("HAProxy, seed §1.1", 1443, "pidfile:/run/seed-haproxy.pid", "haproxy",
     "kill $(cat /run/seed-haproxy.pid); sleep 1; haproxy -f /opt/bench/seed-haproxy.cfg -D -p /run/seed-haproxy.pid"),
    ("nginx stream, collection", 4443, "unit:nginx", "nginx", "systemctl restart nginx"),
    ("nginx stream, seed §2", 2443, "pidfile:/run/seed-nginx.pid", "nginx",
     "nginx -c /opt/bench/seed-nginx.conf -s stop; sleep 1; nginx -c /opt/bench/seed-nginx.conf"),
]
NETSTAT_KEYS = ("ListenOverflows", "ListenDrops", "SyncookiesSent", "TCPReqQFullDrop")


class Bench(object):
    def __init__(self, container):
        self.container = container

    def sh(self, command, check=True, timeout=300):
        proc = subprocess.run(["docker", "exec", self.container, "sh", "-c", command], capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError("%s: %s" % (command, proc.stdout + proc.stderr))
        return proc.stdout

    def load(self, *args, timeout=300):
        out = self.sh("python3 /opt/bench/load.py %s" % " ".join(str(a) for a in args), timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def pids(self, where):
        kind, value = where.split(":", 1)
        if kind == "unit":
            main = self.sh("systemctl show %s -p MainPID --value" % value).strip()
        else:
            main = self.sh("cat %s" % value).strip()
        children = self.sh("ps -o pid= --ppid %s || true" % main).split()
        return [main] + children

    def rss_kib(self, where):
        total = 0
        for pid in self.pids(where):
            status = self.sh("cat /proc/%s/status 2>/dev/null || true" % pid)
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            total += int(match.group(1)) if match else 0
        return total

    def netstat(self):
        text = self.sh("cat /proc/net/netstat").splitlines()
        values = {}
        for header, row in zip(text[0::2], text[1::2]):
            names, numbers = header.split()[1:], row.split()[1:]
            if header.startswith("TcpExt:"):
                values.update(zip(names, (int(n) for n in numbers)))
        return dict((key, values.get(key, 0)) for key in NETSTAT_KEYS)

    def hold(self, port, count, where):
        """Open ``count`` routed connections, measure the daemon's RSS, close them."""
        before = self.rss_kib(where)
        proc = subprocess.Popen(["docker", "exec", "-i", self.container, "python3", "/opt/bench/load.py", "hold",
                                 str(port), "--count", str(count), "--concurrency", "2000", "--timeout", "10",
                                 "--hold", "120"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            opened = json.loads(proc.stdout.readline())
            time.sleep(2)
            during = self.rss_kib(where)
            proc.stdin.close()
            ended = json.loads(proc.stdout.readline())
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        return opened, ended, during - before

    def sysctl(self, key, value=None):
        path = "/proc/sys/" + key.replace(".", "/")
        if value is not None:
            self.sh("echo %s > %s" % (value, path))
        return self.sh("cat %s" % path).strip()

    def kernel_default(self, key):
        return self.sh("unshare -n cat /proc/sys/%s" % key.replace(".", "/")).strip()


def median(values):
    return statistics.median(list(values))


def start_seeds(bench):
    bench.sh("test -s /run/seed-haproxy.pid && kill -0 $(cat /run/seed-haproxy.pid) || "
             "haproxy -f /opt/bench/seed-haproxy.cfg -D -p /run/seed-haproxy.pid")
    bench.sh("test -s /run/seed-nginx.pid && kill -0 $(cat /run/seed-nginx.pid) || nginx -c /opt/bench/seed-nginx.conf")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--container", default="benchmark-debian12")
    parser.add_argument("--connections", type=int, default=10000, help="idle connections held via nginx")
    parser.add_argument("--haproxy-connections", type=int, default=9000, help="idle connections held via HAProxy")
    parser.add_argument("--rate-count", type=int, default=5000)
    parser.add_argument("--rss-connections", type=int, default=4000, help="idle connections for the memory figure")
    parser.add_argument("--burst", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the rate measurement")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds the router is stopped during the burst")
    args = parser.parse_args()
    bench = Bench(args.container)
    start_seeds(bench)
    time.sleep(3)  # HAProxy's first health checks

    rows = []
    for name, port, where, daemon, restart in ROUTERS:
        # memory first, on a freshly started daemon, at a count both configurations hold
        bench.sh(restart)
        time.sleep(4)
        rss_opened, dummy, rss = bench.hold(port, args.rss_connections, where)
        time.sleep(2)
        count = args.haproxy_connections if daemon == "haproxy" else args.connections
        opened, ended, dummy = bench.hold(port, count, where)
        rows.append({"name": name, "port": port, "opened": opened, "ended": ended, "rss_kib": rss,
                     "rss_opened": rss_opened["ok"], "count": count, "rounds": []})
        time.sleep(2)
    # the new-connection rate: direct and through each router, interleaved in
    # rounds (direct right before each router), so that machine noise hits
    # both sides of a ratio alike; medians over the rounds
    for dummy in range(args.rounds):
        for row in rows:
            direct = bench.load("rate", DIRECT_PORT, "--count", args.rate_count, "--concurrency", 50)
            routed = bench.load("rate", row["port"], "--count", args.rate_count, "--concurrency", 50)
            row["rounds"].append((direct, routed))

    print("\n### Idle connections held, new-connection rate (%d connections, 50 at a time, median of %d rounds, "
          "each router right after a direct run)\n" % (args.rate_count, args.rounds))
    print("| router | held (errors) | still open after hold | RSS per 10k idle (measured at %d) | conn/s direct "
          "| conn/s via router | ratio to direct (each round) | added median / p99 latency | errors |"
          % args.rss_connections)
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        directs = [d for d, r in row["rounds"]]
        routeds = [r for d, r in row["rounds"]]
        ratios = [r["per_second"] / d["per_second"] for d, r in row["rounds"]]
        per10k = row["rss_kib"] * 10000.0 / max(1, row["rss_opened"]) / 1024.0
        errors = [r["errors"] for r in routeds if r["errors"]] + [d["errors"] for d in directs if d["errors"]]
        print("| %s | %d of %d (%s) | %d | %.1f MiB | %.0f | %.0f | %.2f (%s) | %.3f / %.3f ms | %s |" % (
            row["name"], row["opened"]["ok"], row["count"],
            json.dumps(row["opened"]["errors"]) if row["opened"]["errors"] else "0",
            row["ended"]["alive"], per10k, median(d["per_second"] for d in directs),
            median(r["per_second"] for r in routeds), median(ratios), " ".join("%.2f" % x for x in ratios),
            median(r["p50_ms"] - d["p50_ms"] for d, r in row["rounds"]),
            median(r["p99_ms"] - d["p99_ms"] for d, r in row["rounds"]), json.dumps(errors) if errors else "none"))

    # accept queue: the same burst against the collection's HAProxy while it
    # is busy for --pause seconds (its worker stopped, as during a CPU stall),
    # with the kernel's default backlogs and with the derived ones
    keys = ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog")
    tuned = dict((key, bench.sysctl(key)) for key in keys)
    default = dict((key, bench.kernel_default(key)) for key in keys)
    print("\n### Burst of %d connects while the collection's HAProxy is busy for %.0f s\n" % (args.burst, args.pause))
    print("| sysctls | somaxconn | tcp_max_syn_backlog | connected | errors | p50 / p99 / max ms | %s |"
          % " | ".join(NETSTAT_KEYS))
    print("|---|---|---|---|---|---|" + "---|" * len(NETSTAT_KEYS))
    try:
        for label, values in (("kernel defaults", default), ("derived (tuning role)", tuned)):
            for key in keys:
                bench.sysctl(key, values[key])
            # the backlog is taken at listen(): the router and the sink listen again
            bench.sh("systemctl restart haproxy bench-sink")
            time.sleep(4)
            workers = " ".join(bench.pids("unit:haproxy")[1:])
            before = bench.netstat()
            proc = subprocess.Popen(["docker", "exec", args.container, "python3", "/opt/bench/load.py", "burst", "443",
                                     "--count", str(args.burst), "--timeout", "15"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)
            bench.sh("kill -STOP %s" % workers)
            time.sleep(args.pause)
            bench.sh("kill -CONT %s" % workers)
            out, err = proc.communicate(timeout=120)
            result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": 0, "errors": {"load": err}}
            after = bench.netstat()
            print("| %s | %s | %s | %d | %s | %s / %s / %s | %s |" % (
                label, values[keys[0]], values[keys[1]], result["ok"],
                json.dumps(result["errors"]) if result["errors"] else "0",
                result.get("p50_ms"), result.get("p99_ms"), result.get("max_ms"),
                " | ".join(str(after[k] - before[k]) for k in NETSTAT_KEYS)))
            time.sleep(2)
    finally:
        for key in keys:
            bench.sysctl(key, tuned[key])
        bench.sh("systemctl restart haproxy bench-sink")
    return 0


if __name__ == "__main__":
    sys.exit(main())
