# -*- coding: utf-8 -*-
"""The doctor's fleet comparison: public traits read from a real local HTTPS server, and what may be shared."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.server
import ssl
import subprocess
import threading

import pytest

from ansible_collections.tgproxy.stealth.plugins.filter.topology import tgp_shared_traits
from ansible_collections.tgproxy.stealth.plugins.module_utils import fleet, site

DOMAIN = "proxy.example.com"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=" + DOMAIN],
                   check=True, capture_output=True)
    return str(cert), str(key)


def serve(files, certificate):
    """A local HTTPS server for a generated site's files (404 page for anything else); its port."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            path = "index.html" if self.path == "/" else self.path.lstrip("/")
            body, status = (files[path], 200) if path in files else (files["404.html"], 404)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_collect_reads_every_trait_a_visitor_sees(certificate):
    files = site.generate("seed-a", DOMAIN)
    server = serve(files, certificate)
    try:
        traits = fleet.collect("127.0.0.1", server.server_address[1], DOMAIN)
    finally:
        server.shutdown()
    assert traits["body:/"] == fleet._sha(files["index.html"])
    assert traits["body:/favicon.ico"] == fleet._sha(files["favicon.ico"])
    assert traits["body:/no-such-page"] == fleet._sha(files["404.html"]) and traits["status:/no-such-page"] == "404"
    css = [path for path in files if path.endswith(".css")][0]
    assert traits["stylesheet"] == fleet._sha(files[css])
    assert traits["certificate"] and traits["server"].startswith("BaseHTTP")
    assert "content-length" in traits["header_names"].split()


def test_two_sites_share_only_what_ordinary_sites_share(certificate):
    traits = []
    for seed in ("seed-a", "seed-b"):
        server = serve(site.generate(seed, DOMAIN), certificate)
        try:
            traits.append(fleet.collect("127.0.0.1", server.server_address[1], DOMAIN))
        finally:
            server.shutdown()
    # one certificate for both servers here: that one is caught, every page differs
    assert fleet.shared(traits[0], traits[1]) == ["certificate"]
    assert traits[0]["server"] == traits[1]["server"]  # ordinary, never compared


def test_messages_name_the_trait_and_the_other_hosts():
    same = {"body:/": "aa", "stylesheet": "bb", "certificate": "c1", "server": "Caddy"}
    hostvars = {"p1": {"__doctor_traits": {"traits": same}},
                "p2": {"__doctor_traits": {"traits": dict(same, certificate="c2")}},
                "p3": {"__doctor_traits": {"traits": {"body:/": "zz", "server": "Caddy"}}},
                "p4": {"__doctor_traits": {"failed": True, "msg": "refused"}}}
    hosts = sorted(hostvars)
    messages = tgp_shared_traits(hostvars, hosts, "p1")
    assert messages == ["the same body at / with p2: whoever finds one proxy finds the other",
                        "the same stylesheet with p2: whoever finds one proxy finds the other"]
    assert tgp_shared_traits(hostvars, hosts, "p3") == []
    assert tgp_shared_traits(hostvars, hosts, "p4") == []


def test_every_trait_is_either_identifying_or_ordinary():
    assert not set(fleet.IDENTIFYING) & set(fleet.ORDINARY)
    assert all(reason for reason in list(fleet.IDENTIFYING.values()) + list(fleet.ORDINARY.values()))
