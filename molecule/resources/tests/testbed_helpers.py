"""Helpers shared by the Molecule scenarios' testinfra tests (test scaffolding)."""

import os
import re
import shlex
import subprocess
import time

import pytest

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
DOMAIN = "proxy.stealth.test"


@pytest.fixture(scope="module")
def pebble_root(host, tmp_path_factory):
    """The root of the test bed's ACME CA, which signed the site's certificate."""
    pem = host.check_output("curl -fsS https://acme.stealth.test:15000/roots/0")
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_text(pem + "\n")
    return str(path)


def host_ip(host):
    return host.check_output("hostname -I").split()[0]


CADDY_ALT_SVC = 'alt-svc: h3=":443"; ma=2592000'


def web_answers(ip, sni, cafile, backend):
    """Whether the public :443 gives a TLS client with this SNI (None: none) the web server's own answer: the site's
    certificate for its name; for any other name Caddy's own alert (a stock Caddy has no default or fallback
    certificate), nginx its default server's certificate."""
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:443" % ip, "-CAfile", cafile, "-verify_return_error",
         "-verify_hostname", DOMAIN, "-brief"] + (["-servername", sni] if sni else ["-noservername"]),
        input="", capture_output=True, text=True, timeout=20, check=False)
    out = proc.stdout + proc.stderr
    if backend == "caddy" and sni != DOMAIN:
        return "alert internal error" in out, out
    return proc.returncode == 0 and "Verification: OK" in out, out


def http3_client(host):
    """A host of the scenario whose curl speaks HTTP/3 (Debian 13's), to reach another host's UDP :443."""
    import testinfra  # pylint: disable=import-outside-toplevel
    for other in [host] + testinfra.get_hosts(["ansible://proxies"], ansible_inventory=os.path.join(EPHEMERAL, "inventory")):
        if "HTTP3" in other.check_output("curl -V"):
            return other
    raise AssertionError("no host of the scenario has a curl with HTTP/3")


def assert_public_headers_are_ordinary(ip, cafile, backend="caddy", host=None):
    """What a client of the public :443 sees in the web server's answers (HTTP/1.1 and HTTP/2, GET and HEAD, the
    page and a missing path) names no internal port, and advertises HTTP/3 exactly as an ordinary site of the same
    server does, and only where it answers: Caddy's own Alt-Svc naming :443, served on UDP :443 by Caddy itself
    (the routers and mtg carry TCP only); nginx advertises none."""
    if backend == "caddy" and host is not None:
        client = http3_client(host)
        answer = client.check_output("curl -sSk --http3-only -o /dev/null -w '%%{http_version} %%{http_code}' "
                                     "--max-time 10 --resolve %s:443:%s https://%s/", DOMAIN, ip, DOMAIN)
        assert answer == "3 200", answer
    for version in ("--http1.1", "--http2"):
        for method in (["-I"], ["-sD", "-", "-o", "/dev/null"]):
            for path in ("/", "/no-such-page"):
                proc = subprocess.run(
                    ["curl", "-sS", "--max-time", "10", version, "--cacert", cafile, "--resolve",
                     "%s:443:%s" % (DOMAIN, ip)] + method + ["https://%s%s" % (DOMAIN, path)],
                    capture_output=True, text=True, timeout=20, check=False)
                headers = proc.stdout.lower()
                assert proc.returncode == 0 and headers.startswith("http/"), (version, method, path, proc.stderr)
                alt_svc = [line.strip() for line in headers.splitlines() if line.startswith("alt-svc")]
                assert alt_svc == ([CADDY_ALT_SVC] if backend == "caddy" else []), (version, method, path, headers)
                assert not re.search(r":(8443|8080|3128|3129)\b", headers), (version, method, path, headers)


def public_site(ip, cafile=None):
    """{path: (status, body)} of what the public :443 serves for the site's usual paths and its stylesheet
    (cafile None: another host's, whose certificate comes from its own test CA)."""
    trust = ["--cacert", cafile] if cafile else ["--insecure"]

    def get(path):
        command = ["curl", "-sS", "--max-time", "10"] + trust + [
            "--resolve", "%s:443:%s" % (DOMAIN, ip), "-o", "-", "-w", "\n%{http_code}", "https://%s%s" % (DOMAIN, path)]
        proc = subprocess.run(command, capture_output=True, timeout=20, check=False)
        assert proc.returncode == 0, (path, proc.stderr)
        body, dummy, status = proc.stdout.rpartition(b"\n")
        return int(status), body

    site = dict((path, get(path)) for path in ("/", "/robots.txt", "/favicon.ico", "/sitemap.xml", "/no-such-page"))
    css = re.search(rb'<link rel="stylesheet" href="(/[^"]+)"', site["/"][1])
    assert css, site["/"][1][:500]
    site[css.group(1).decode()] = get(css.group(1).decode())
    return site


def assert_each_host_serves_its_own_site(host, cafile):
    """Two hosts of a fleet never serve the same bytes on any path: whoever finds one cannot find the others by
    content (the page, the stylesheet, the favicon, robots.txt, the sitemap, the 404 page)."""
    import testinfra  # pylint: disable=import-outside-toplevel
    me = host.backend.get_hostname()
    others = [other for other in testinfra.get_hosts(["ansible://proxies"], ansible_inventory=os.path.join(EPHEMERAL, "inventory"))
              if other.backend.get_hostname() != me]
    assert others
    mine = public_site(host_ip(host), cafile)
    assert mine["/no-such-page"][0] == 404 and b"404" in mine["/no-such-page"][1]
    for path, (status, body) in mine.items():
        assert status == (404 if path == "/no-such-page" else 200) and body, (path, status)
    for other in others:
        # every host of the test bed runs its own ACME CA: another host's certificate is not this one's to verify
        theirs = public_site(host_ip(other))
        name = other.backend.get_hostname()
        assert set(mine) != set(theirs), "%s links the same stylesheet" % name
        for path in set(mine) & set(theirs):
            assert mine[path][1] != theirs[path][1], "%s serves the same %s" % (name, path)


def wait_for(predicate, seconds=30, interval=0.5):
    """Poll predicate until it is true or seconds have passed; its last value. For the state an action reaches
    only after it returns (a daemon listening, a reload done, a log line written): the caller then asserts once."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def on_one_host(host, which, covered):
    """Run the calling test on one host of its scenario only, the one whose name ends with ``which`` (CI time: a
    test that runs a playbook or waits takes minutes). ``covered`` says what covers the other distribution."""
    if not host.backend.get_hostname().endswith(which):
        pytest.skip("on one host of the scenario (%s), for CI time; %s" % (which, covered))


def alternate_hosts(host, cases, case, both=()):
    """Parametrized bad-input cases alternate between the scenario's two hosts (the validator and the check play
    are the same code on both): each case runs on one host, and each host runs half of them. A case in ``both``
    (one the installed daemon's own check rejects: its version differs between the hosts) runs on each."""
    if case not in both:
        on_one_host(host, ("debian12", "debian13")[sorted(cases).index(case) % 2],
                    "the cases alternate between the two hosts")


def count_lines(host, command, text):
    """How many lines of a command's output (run on the host) contain text."""
    return int(host.check_output("%s | grep -cF -- %s || true" % (command, shlex.quote(text))))


def child_pids(host, pid):
    """PIDs of a process's children (a master's workers)."""
    return set(host.run("ps --ppid %s -o pid=" % pid).stdout.split())


def listener_pids(host, port):
    """PIDs of the processes that hold a listening TCP socket on port (any address)."""
    return set(re.findall(r"pid=(\d+)", host.check_output("ss -Htlnp 'sport = :%d'" % port)))


def reloaded(host, port, old_workers):
    """A master's reload is done: its listener on port is held, and by none of the workers it had before (they
    close their listeners when told to stop, once the new workers run the new configuration)."""
    pids = listener_pids(host, port)
    return bool(pids) and not pids & old_workers


def run_playbook(path, host_name, extra=(), *options, **env):
    """Run a playbook against one host of the scenario's inventory with extra vars."""
    cmd = ["ansible-playbook", "-i", os.path.join(EPHEMERAL, "inventory"), "--limit", host_name, path] + list(options)
    for item in extra:
        cmd += ["-e", item]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                          env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", **env))


def start_playbook(path, host_name, extra=(), **env):
    """The same as run_playbook, in the background (a Popen), for a test that stops it halfway."""
    cmd = ["ansible-playbook", "-i", os.path.join(EPHEMERAL, "inventory"), "--limit", host_name, path]
    for item in extra:
        cmd += ["-e", item]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", **env))


def converge(scenario, host_name, extra, *options):
    """Run the scenario's converge playbook against one host with extra vars."""
    return run_playbook(os.path.join(PROJECT, "molecule", scenario, "converge.yml"), host_name, extra, *options)


def leaf_certificate(address, servername):
    """subject, issuer, SAN and serial of the certificate served at address:443."""
    chain = subprocess.run(
        ["openssl", "s_client", "-connect", address, "-servername", servername, "-showcerts"],
        input="", capture_output=True, text=True, timeout=20, check=False,
    ).stdout
    leaf = chain[chain.index("-----BEGIN CERTIFICATE-----"):chain.index("-----END CERTIFICATE-----") + 25]
    return subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer", "-ext", "subjectAltName", "-serial"],
                          input=leaf, capture_output=True, text=True, check=True).stdout


def doctor(host_name, *extra):
    """Run playbooks/doctor.yml against one host: (process, output, probe table rows)."""
    # the JSON result format prints each row on one line (YAML folds long ones)
    proc = run_playbook(os.path.join(PROJECT, "playbooks", "doctor.yml"), host_name, extra,
                        ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    text = proc.stdout + proc.stderr
    # one row per probe, whichever result format the callback prints
    rows = [line.strip().strip("-'\", ") for line in text.splitlines() if "| web alone:" in line]
    return proc, text, rows


def reference_rows(text):
    """The doctor's rows of the FakeTLS first flight and of reference mode (probe: row)."""
    rows = [line.strip().strip("-'\", ") for line in text.splitlines() if "| reference:" in line]
    return dict((row.split()[0], row) for row in rows)


def assert_doctor_passes(host_name, secret, *extra):
    """doctor.yml passes: every probe identical or a listed known difference, secret never printed."""
    proc, text, rows = doctor(host_name, *extra)
    print("\n".join(rows))
    assert proc.returncode == 0, text[-4000:]
    assert len(rows) == 15 and all(" identical " in row or " known difference " in row for row in rows), rows
    assert "all checks passed" in text
    assert secret not in text
    # mtg's FakeTLS first flight is sized like the site's own (defense.doppelganger), and where the scenario has a
    # reference site every probe of reference mode answers as that ordinary site does, but for catalogued differences
    ref = reference_rows(text)
    print("\n".join(ref.values()))
    assert " identical " in ref["faketls_flight_bytes"], ref
    assert all(" identical " in row or " known difference " in row for row in ref.values()), ref
    return ref


def assert_reference_mode_ran(host, ref):
    """Where the host has a reference site, the doctor compared it with every probe and the HTTP-level ones."""
    if host.ansible.get_variables().get("tgproxy_doctor_reference"):
        assert {"magic_sni", "random_sni", "no_sni", "https_root", "https_missing", "https_robots", "https_favicon",
                "https_head", "https_http10_no_host", "https_host_ip", "https_unknown_host", "http_root",
                "http_http10_no_host", "http_host_ip", "http_unknown_host", "tls_resumption", "first_flight"} <= set(ref), ref


def assert_ssh_through_443(host, address, tmp_path, label):
    """A real OpenSSH client logs in through :443 (the banner it sends first is routed to sshd)."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host.run_expect([0], "install -d -m 0700 /root/.ssh && echo '%s' > /root/.ssh/authorized_keys"
                    % (tmp_path / "id_ed25519.pub").read_text().strip())
    proc = subprocess.run(["ssh", "-p", "443", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "root@" + address,
                           "echo through-%s-$(hostname)" % label], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 0 and "through-%s-" % label in proc.stdout, proc.stdout + proc.stderr
