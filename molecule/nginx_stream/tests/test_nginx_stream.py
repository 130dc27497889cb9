"""Three-service topology behind nginx stream (real nginx, mtg, Caddy or nginx + acme.sh, Pebble)."""

import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources", "tests"))

# the behaviour every router topology shares
from router_tests import *  # noqa: E402,F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from router_tests import (  # noqa: E402
    assert_further_instances_go_blue_green_and_retire, assert_mtg_changes_are_blue_green, listeners, web_backend)
from config_property import assert_daemon_accepts_every_accepted_input  # noqa: E402
from testbed_helpers import (  # noqa: E402,F401  pylint: disable=unused-import
    DOMAIN, PROJECT, alternate_hosts, converge, count_lines, host_ip, on_one_host, pebble_root, wait_for)

sys.path.insert(0, os.path.join(PROJECT, "plugins", "module_utils"))
import tuning  # noqa: E402  (stdlib-only module_utils, imported by path)

SCENARIO = "nginx_stream"
STREAM = "/etc/nginx/modules-enabled/90-tgproxy-stream.conf"
STREAM_LOG = "/var/log/nginx/tgproxy-stream.log"
CAPACITY = 6000  # tgproxy_capacity.connections in molecule.yml
# the router's http-context :80 server of earlier releases (now only when the web server has no HTTP listener)
ROUTER_HTTP_FILE = "/etc/nginx/sites-available/tgproxy-router-http.conf"
ROUTER_HTTP_LINK = "/etc/nginx/sites-enabled/tgproxy-router-http.conf"
SNAPSHOT = ("sha256sum /etc/nginx/nginx.conf /etc/nginx/modules-enabled/90-tgproxy-stream.conf /etc/nginx/sites-available/*;"
            " systemctl show nginx -p MainPID -p ActiveEnterTimestamp")


# the proxies only: the scenario's reference site is an ordinary website (molecule/resources/reference.yml)
testinfra_hosts = ["ansible://proxies"]


@pytest.fixture()
def router():
    # one_host: where a reload runs with no load (nginx 1.26; 1.22 reloads under load in the blue/green test)
    return {"scenario": SCENARIO, "unit": "nginx", "config": STREAM, "one_host": "debian13",
            "change": ["nginx_stream_preread_timeout=4s"], "changed_text": "preread_timeout 4s;",
            "reload_handler": "RUNNING HANDLER [tgproxy.stealth.nginx_stream : Reload nginx stream]",
            # an upstream that refused a connection is skipped for fail_timeout (10 s, nginx's default: the
            # template sets none), on nginx's one-second clock
            "failed_upstream_skip_s": 12}


def test_listeners_and_bind_addresses(host):
    nginx = listeners(host, "nginx")
    if web_backend(host) == "caddy":
        assert nginx == ["0.0.0.0:443", "0.0.0.0:80", "[::]:443", "[::]:80"]
        assert listeners(host, "caddy") == ["127.0.0.1:2019", "127.0.0.1:8080", "127.0.0.1:8443"]
    else:
        # one nginx, two contexts: the router and the site
        assert nginx == ["0.0.0.0:443", "0.0.0.0:80", "127.0.0.1:8080", "127.0.0.1:8443", "[::]:443", "[::]:80"]


def test_one_nginx_two_contexts_in_separate_files(host):
    stream = host.file(STREAM).content_string
    assert "ssl_preread on;" in stream and "proxy_protocol on;" in stream and "proxy_timeout 3600s;" in stream
    assert " ssl_certificate" not in stream
    # :80 is passed on at layer 4 by a stream server to the web server's HTTP listener (which answers it); no
    # http-context server of the router's claims it
    assert re.search(r"listen 0\.0\.0\.0:80;\n\s*listen \[::\]:80 ipv6only=on;\n\s*proxy_pass 127\.0\.0\.1:8080;", stream), stream
    for path in (ROUTER_HTTP_LINK, ROUTER_HTTP_FILE):
        assert not host.file(path).exists and not host.file(path).is_symlink
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    if web_backend(host) != "caddy":
        assert host.file("/etc/nginx/sites-enabled/tgproxy-web.conf").is_symlink


def test_router_logs_the_routed_sni(host):
    controller_ip = host.check_output("ip route show default").split()[2]
    logged = {sni: count_lines(host, "cat " + STREAM_LOG, "sni=%s " % sni) for sni in ("other.example.net", DOMAIN)}
    for sni in ("other.example.net", DOMAIN):
        subprocess.run(["openssl", "s_client", "-connect", "%s:443" % host_ip(host), "-servername", sni],
                       input="", capture_output=True, text=True, timeout=20, check=False)
    # nginx logs a session when it ends, once it has seen the client close (after openssl has exited)
    wait_for(lambda: all(count_lines(host, "cat " + STREAM_LOG, "sni=%s " % sni) > n for sni, n in logged.items()))
    log = host.check_output("tail -n 50 /var/log/nginx/tgproxy-stream.log")
    assert re.search(r"^%s .* sni=other.example.net upstream=127.0.0.1:8443$" % re.escape(controller_ip), log, re.M), log
    assert re.search(r"^%s .* sni=%s upstream=127.0.0.1:3128$" % (re.escape(controller_ip), re.escape(DOMAIN)), log, re.M), log


def test_workers_are_sized_for_the_declared_capacity(host):
    workers = tuning.nginx_workers(tuning.router_maxconn(CAPACITY), int(host.check_output("nproc")))
    main = host.file("/etc/nginx/nginx.conf").content_string
    assert re.search(r"^\s*worker_connections %d;$" % workers["worker_connections"], main, re.M), main
    assert "worker_rlimit_nofile %d;" % workers["worker_rlimit_nofile"] in host.file(STREAM).content_string
    pids = [line.split()[0] for line in host.check_output("ps -C nginx -o pid=,args=").splitlines()
            if line.rstrip().endswith("nginx: worker process")]
    assert pids
    for pid in pids:
        limits = host.file("/proc/%s/limits" % pid).content_string
        assert re.search(r"Max open files\s+%d\s" % workers["worker_rlimit_nofile"], limits), limits


# what an earlier release wrote: the router answered :80 itself, ACME requests passed on in http context
OLD_ROUTER_HTTP = """server {
    listen 0.0.0.0:80 default_server;
    listen [::]:80 default_server;
    server_name _;
    server_tokens off;
    location ^~ /.well-known/acme-challenge/ {
        proxy_pass http://127.0.0.1:8080;
    }
    location / {
        return 301 https://$host$request_uri;
    }
}
"""


def test_an_earlier_routers_http_server_gives_way_to_the_stream_passthrough(host):
    """A host deployed by an earlier release: the router's own http-context :80 server is live and the stream file
    has no :80 server. One run moves :80 into the stream configuration and removes the old server, applied by one
    reload (never both claiming :80: that reload would fail to bind); the web server answers :80 afterwards."""
    on_one_host(host, "debian12", "where the web server is the same nginx, the harder case")
    ip = host_ip(host)
    stream = host.file(STREAM).content_string
    start = stream.index("\n    # :80 - every connection")
    host.run_expect([0], "printf '%%s' %s > %s && printf '%%s' %s > %s && ln -sfn %s %s && systemctl reload nginx",
                    stream[:start] + "\n}\n", STREAM, OLD_ROUTER_HTTP, ROUTER_HTTP_FILE, ROUTER_HTTP_FILE, ROUTER_HTTP_LINK)

    def answer():
        """(status, Location) of :80 for a request whose Host is the address."""
        head = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "10", "-H", "Host: " + ip,
                               "http://%s/page" % ip], capture_output=True, text=True, timeout=20, check=False).stdout
        found = re.search(r"(?im)^location: (\S+)$", head)
        return head.split(" ")[1] if head.startswith("HTTP/") else head, found.group(1) if found else None

    # the router's own 301, to whatever Host it was asked for
    assert wait_for(lambda: answer() == ("301", "https://%s/page" % ip)), answer()
    pid = host.check_output("systemctl show nginx -p MainPID --value")
    proc = converge(SCENARIO, host.backend.get_hostname(), [])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "RUNNING HANDLER [tgproxy.stealth.nginx_stream : Reload nginx stream]" in proc.stdout
    for path in (ROUTER_HTTP_LINK, ROUTER_HTTP_FILE):
        assert not host.file(path).exists and not host.file(path).is_symlink
    assert host.file(STREAM).content_string == stream
    assert host.check_output("systemctl show nginx -p MainPID --value") == pid and host.service("nginx").is_running
    # the web server's own answer now: Caddy redirects to the Host asked for (308), nginx to its site (301)
    want = ("308", "https://%s/page" % ip) if web_backend(host) == "caddy" else ("301", "https://%s/page" % DOMAIN)
    assert wait_for(lambda: answer() == want), answer()
    again = converge(SCENARIO, host.backend.get_hostname(), [])
    assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP")[-1], again.stdout[-3000:]


CASES = {
    "workers-above-open-file-limit": (['{"tgproxy_router": {"maxconn": 20000}}'], "needs worker_connections"),
    # of its kind (a duration), a unit only nginx's own check of the candidate refuses (nginx has no "us")
    "rejected-by-nginx": (["nginx_stream_preread_timeout=5us"], "test failed"),
    "preread-timeout-of-another-kind": (["nginx_stream_preread_timeout=soon"],
                                        "TGP954 [nginx_stream_preread_timeout] 'soon'"),
    "mtg-public-behind-router": (["mtg_bind_to=0.0.0.0:3128"], "TGP301"),
    "ssh-route-on-nginx-stream": (['{"tgproxy_router": {"routes": [{"match": "sni_exact", "value": "proxy.stealth.test", "backend": "mtg"},'
                                   ' {"match": "ssh", "backend": "web"}, {"match": "default", "backend": "web"}]}}'], "TGP512"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_leaves_the_running_router_alone(host, case):
    alternate_hosts(host, CASES, case, both=["rejected-by-nginx"])
    extra, expected = CASES[case]
    before = host.check_output(SNAPSHOT)
    proc = converge(SCENARIO, host.backend.get_hostname(), extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, out
    assert host.check_output(SNAPSHOT) == before
    assert host.service("nginx").is_running


def test_every_input_the_model_accepts_gives_a_config_the_daemon_accepts(host):
    """Random valid topologies (routes, SNI names, suffixes, ALPN tokens, backend names, ports, timeouts, PROXY
    flags), rendered by the role's template and checked by the nginx installed on the host
    (molecule/resources/tests/config_property.py)."""
    assert_daemon_accepts_every_accepted_input(host.backend.get_hostname(), "nginx_stream")


def test_a_change_of_mtg_under_load_goes_blue_green_and_drops_nothing(host, router, tmp_path):
    """nginx 1.22 (Debian 12): the second instance, a graceful reload, the drain; a killed play resumes (haproxy
    also checks a run with nothing to change and the doctor on the second instance)."""
    on_one_host(host, "debian12", "the switch under load behind HAProxy runs on debian13")
    assert_mtg_changes_are_blue_green(host, router, tmp_path, full=False)


def test_further_instances_each_with_its_own_domain_secret_and_site_go_blue_green_then_one_retires(
        host, tmp_path, pebble_root):
    """Two more mtg instances behind nginx stream (Debian 13, Caddy): each with its own domain, secret, certificate
    and website; a change goes blue/green for each; a rotation (molecule/resources/tests/router_tests.py)."""
    on_one_host(host, "debian13", "with Caddy, which gives each instance's domain a certificate and site")
    assert_further_instances_go_blue_green_and_retire(
        host, tmp_path, pebble_root, SCENARIO, STREAM,
        lambda port: "upstream=127.0.0.1:%d" % port in host.check_output("tail -n 300 %s" % STREAM_LOG))
