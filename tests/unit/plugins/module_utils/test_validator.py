# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Topology validator: a matrix of bad and good topologies with exact codes, plus properties."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.tgproxy.stealth.plugins.module_utils import topology as t
from ansible_collections.tgproxy.stealth.plugins.module_utils import validator as v

KEY = bytes(range(1, 17))
DOMAIN = "proxy.example.com"
V4, V6 = "203.0.113.10", "2001:db8::10"
DELETE = object()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def secret_for(domain, key=KEY):
    return "ee" + key.hex() + domain.encode("ascii").hex()


SECRET = secret_for(DOMAIN)


def mut(base, changes):
    """A deep copy of ``base`` with dotted paths (``a.b[1].c``) set; DELETE removes a key."""
    doc = copy.deepcopy(base)
    for path, value in changes.items():
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        node = doc
        for part in parts[:-1]:
            node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
        last = parts[-1]
        if last.startswith("["):
            node[int(last[1:-1])] = value
        elif value is DELETE:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return doc


# --------------------------------------------------------------------------
# Good bases (explicit, so that single mutations are meaningful)
# --------------------------------------------------------------------------
DIRECT = {
    "kind": "mtg_direct", "domain": DOMAIN, "public_ipv4": V4, "public_ipv6": V6,
    "mtg": {"version": "2.2.8", "secret": SECRET, "bind": "[::]:443",
            "fronting": {"host": "127.0.0.1", "port": 8443, "proxy_protocol": True}},
    "web": {"kind": "caddy", "https_bind": "127.0.0.1:8443", "http_bind": "[::]:80", "proxy_protocol": True,
            "proxy_allow": ["127.0.0.1/32"]},
}


def router_base(kind, pp=False, send=None):
    send = send or (("v1" if kind == "nginx_stream" else "v2") if pp else "none")
    return {
        "kind": "sni_router", "domain": DOMAIN, "public_ipv4": V4, "public_ipv6": V6, "proxy_protocol": pp,
        "mtg": {"version": "2.2.8", "secret": SECRET, "bind": "127.0.0.1:3128", "proxy_protocol_listener": pp,
                "fronting": {"host": "127.0.0.1", "port": 8443, "proxy_protocol": pp}, "concurrency": 8192},
        "router": {
            "kind": kind, "listen": ["0.0.0.0:443", "[::]:443"],
            "timeouts": {"client": "1h", "server": "1h", "tunnel": "1h", "connect": "5s"},
            "routes": [{"match": "sni_exact", "value": DOMAIN, "backend": "mtg"},
                       {"match": "default", "backend": "web"}],
            "backends": {"mtg": {"address": "127.0.0.1:3128", "send_proxy": send},
                         "web": {"address": "127.0.0.1:8443", "send_proxy": send}},
        },
        "web": {"kind": "caddy", "https_bind": "127.0.0.1:8443", "proxy_protocol": pp,
                "proxy_allow": ["127.0.0.1/32", "::1/128"]},
    }


HAPROXY = router_base("haproxy")
HAPROXY_PP = router_base("haproxy", pp=True)
NGINX = router_base("nginx_stream")
NGINX_PP = router_base("nginx_stream", pp=True)
# sslh has no HTTP frontend: the web server owns public :80
SSLH = mut(router_base("sslh"), {"web.http_bind": ["0.0.0.0:80", "[::]:80"]})
# transparent sslh: IPv4 listeners only (TGP208), so the host declares no public IPv6
SSLH_TRANSPARENT = mut(SSLH, {"router.transparent": True, "router.listen": ["0.0.0.0:443"], "public_ipv6": DELETE,
                              "web.http_bind": ["0.0.0.0:80"]})
ROUTES = HAPROXY["router"]["routes"]
MAGIC, DEFAULT = ROUTES
SSHD = [{"name": "sshd", "bind": "0.0.0.0:22"}]
SSH_BACKEND = {"address": "127.0.0.1:22", "send_proxy": "none"}
SSH_ROUTE = {"match": "ssh", "backend": "ssh"}
WWW_ROUTE = {"match": "sni_exact", "value": "www.example.com", "backend": "web"}

GOOD = [
    ("direct caddy, PROXY to web", DIRECT),
    ("direct nginx web, no PROXY", mut(DIRECT, {
        "web.kind": "nginx", "web.http_bind": ["0.0.0.0:80", "[::]:80"], "web.proxy_protocol": False,
        "mtg.fronting.proxy_protocol": False})),
    ("direct mtg 2.3.0, host key, localhost fronting",
     mut(DIRECT, {"mtg.version": "2.3.0", "mtg.fronting": {"host": "localhost", "port": 8443, "key": "host"},
                  "web.proxy_allow": ["127.0.0.1/32", "::1/128"], "mtg.idle_timeout": "5m"})),
    ("direct, only defaults", {"domain": DOMAIN}),
    ("direct, IPv4-only host on a specific address", mut(DIRECT, {"public_ipv6": DELETE, "mtg.bind": V4 + ":443"})),
    ("haproxy, no PROXY", HAPROXY),
    ("sslh-select within what select() holds", mut(SSLH, {"router.flavour": "select",
                                                          "capacity": {"connections": 400}})),
    ("sslh-ev with a large capacity", mut(SSLH, {"router.flavour": "ev", "capacity": {"connections": 20000},
                                                 "mtg.concurrency": DELETE})),
    ("a website of its own", mut(NGINX, {"site": {"shared_with": []}})),
    ("haproxy on Debian 13.2", mut(HAPROXY, {"platform": {"distribution": "Debian", "version": "13.2"}})),
    ("direct on Debian 12 (major version only)", mut(DIRECT, {"platform": {"distribution": "Debian", "version": "12"}})),
    ("haproxy, PROXY v2 everywhere", HAPROXY_PP),
    ("haproxy, PROXY v1, nginx web, ssh mux",
     mut(router_base("haproxy", pp=True, send="v1"), {
         "web.kind": "nginx", "other_services": SSHD, "router.backends.ssh": SSH_BACKEND,
         "router.routes": [SSH_ROUTE, MAGIC, WWW_ROUTE, DEFAULT], "router.version": "2.8.16"})),
    ("haproxy, web owns :80, default route first", mut(HAPROXY, {
        "router.http": None, "web.http_bind": "[::]:80", "router.routes": [DEFAULT, MAGIC]})),
    ("haproxy, IPv4-only host", mut(HAPROXY, {"public_ipv6": DELETE, "router.listen": ["0.0.0.0:443"],
                                              "router.http": {"listen": ["0.0.0.0:80"]}})),
    ("haproxy, IPv6-only host", mut(HAPROXY, {"public_ipv4": DELETE, "router.listen": ["[::]:443"],
                                              "router.http": {"listen": ["[::]:80"]}})),
    ("nginx_stream, no PROXY", NGINX),
    ("nginx_stream, PROXY v1", mut(NGINX_PP, {"router.version": "1.24.0", "web.kind": "nginx"})),
    ("nginx_stream, suffix before exact (map: exact wins)", mut(NGINX, {
        "router.routes": [{"match": "sni_suffix", "value": "*.example.com", "backend": "web"}, MAGIC, DEFAULT]})),
    ("sslh, no PROXY, ssh first", mut(SSLH, {"other_services": SSHD, "router.backends.ssh": SSH_BACKEND,
                                             "router.routes": [SSH_ROUTE, MAGIC, DEFAULT], "router.version": "1.22c"})),
    ("sslh, nginx web", mut(SSLH, {"web.kind": "nginx"})),
    ("sslh transparent, IPv4-only host", SSLH_TRANSPARENT),
    ("sslh transparent, ssh on loopback",
     mut(SSLH_TRANSPARENT, {"other_services": SSHD, "router.backends.ssh": {"address": "127.0.0.1:22"},
                            "router.routes": [MAGIC, SSH_ROUTE, DEFAULT]})),
    ("sni_router, only defaults", {"kind": "sni_router", "domain": DOMAIN}),
    ("sni_router defaults, PROXY on, nginx_stream", {"kind": "sni_router", "domain": DOMAIN, "proxy_protocol": True,
                                                     "router": {"kind": "nginx_stream"}}),
    ("dns-01 without any :80", mut(HAPROXY, {"router.http": None, "web.http_bind": [],
                                             "web.acme": {"challenge": "dns-01", "dns_provider": "cloudflare"}})),
    ("dns-01, the router passes :80 to the web server's HTTP listener",
     mut(NGINX, {"web.acme": {"challenge": "dns-01", "dns_provider": "cloudflare"}})),
    ("dns-01, the router answers :80 itself",
     mut(HAPROXY, {"router.http": {"acme_passthrough_to": None}, "web.acme": {"challenge": "dns-01"}})),
    ("wildcard certificate, manual", mut(DIRECT, {"web.cert_domains": ["*.example.com"],
                                                  "web.acme": {"challenge": "manual"}})),
    ("haproxy sized by capacity", mut(HAPROXY, {"capacity": {"connections": 30000, "new_per_second": 2000,
                                                             "memory_mb": 4096, "cpus": 2},
                                                "mtg.concurrency": DELETE})),
    ("direct sized by capacity, explicit higher concurrency", mut(DIRECT, {"capacity": {"connections": 5000},
                                                                           "mtg.concurrency": 6000})),
    ("base64 secret, sslh defaults", {"kind": "sni_router", "domain": DOMAIN, "router": {"kind": "sslh"},
                                      "mtg": {"secret": "7gECAwQFBgcICQoLDA0ODxBwcm94eS5leGFtcGxlLmNvbQ"}}),
]

# further mtg instances (mtg.instances): each with its own domain and secret; the router's routes and backends
# and the certificate's names are the model's defaults
OTHER, THIRD = "cdn.example.org", "static.example.net"
NOW = 1800000000  # 2027-01-15T08:00:00Z
INSTANCES = mut(HAPROXY, {"router.routes": DELETE, "router.backends": DELETE, "now": NOW,
                          "mtg.instances": [{"name": "spring", "domain": OTHER, "secret": secret_for(OTHER, KEY[::-1])},
                                            {"name": "summer", "domain": THIRD}]})
INSTANCES_PP = mut(INSTANCES, {"proxy_protocol": True, "mtg.proxy_protocol_listener": True,
                               "mtg.fronting.proxy_protocol": True, "web.proxy_protocol": True})
SPRING = {"match": "sni_exact", "value": OTHER, "backend": "mtg_spring"}
SPRING_BACKEND = {"address": "127.0.0.1:3140", "send_proxy": "none"}
GOOD += [
    ("haproxy, two more mtg instances (ports, routes, backends, certificate: defaults)", INSTANCES),
    ("nginx_stream, a further instance, PROXY v1 to each", mut(INSTANCES_PP, {"router.kind": "nginx_stream"})),
    ("sslh-fork, a further instance",
     mut(INSTANCES, {"router.kind": "sslh", "router.http": None, "web.http_bind": ["0.0.0.0:80", "[::]:80"]})),
    ("a retired instance: its domain goes to the website, its certificate stays",
     mut(INSTANCES, {"mtg.instances[1].retire_at": "2027-01-15"})),
    ("an instance retiring later (an offset), on given ports",
     mut(INSTANCES, {"mtg.instances[0].retire_at": "2027-01-15T09:30:00+01:00",
                     "mtg.instances[0].bind": "127.0.0.1:4000", "mtg.instances[0].stats_bind": "127.0.0.1:4001"})),
    ("instances beside routes and backends the inventory gives (theirs come first)",
     mut(INSTANCES, {"router.routes": [MAGIC, DEFAULT], "router.backends": HAPROXY["router"]["backends"]})),
    ("nginx_stream, further instances on their second slots (what the host recorded)",
     mut(INSTANCES_PP, {"router.kind": "nginx_stream", "mtg.instance_slots": {"spring": "green", "gone": "blue"}})),
    ("an instance's second slot on given ports",
     mut(INSTANCES, {"mtg.instances[1].alternate_bind": "127.0.0.1:4010",
                     "mtg.instances[1].alternate_stats_bind": "127.0.0.1:4011"})),
    ("an instance with routes and backends given", mut(INSTANCES, {
        "mtg.instances": [{"name": "spring", "domain": OTHER}],
        "router.routes": [MAGIC, SPRING, DEFAULT],
        "router.backends": {"mtg": HAPROXY["router"]["backends"]["mtg"], "web": HAPROXY["router"]["backends"]["web"],
                            "mtg_spring": SPRING_BACKEND}})),
]

BAD = [
    # -- further mtg instances
    ("instances with the nginx web server", mut(INSTANCES, {"web.kind": "nginx"}), {"TGP343"}),
    ("instances where mtg owns :443", mut(DIRECT, {"mtg.instances": [{"name": "spring", "domain": OTHER}]}),
     {"TGP340"}),
    # the router's backend then reaches the other instance: its domain goes there (TGP504), or to the first
    # mtg, which its clients' secret does not open (TGP504), as another name routed to it (TGP505)
    ("two instances on one port", mut(INSTANCES, {"mtg.instances[1].bind": "127.0.0.1:3140"}), {"TGP320", "TGP504"}),
    ("an instance on the first one's port", mut(INSTANCES, {"mtg.instances[0].bind": "127.0.0.1:3128"}),
     {"TGP320", "TGP504", "TGP505"}),
    ("an instance's second slot on its first one's port",
     mut(INSTANCES, {"mtg.instances[0].alternate_bind": "127.0.0.1:3140"}), {"TGP320"}),
    ("an instance's second slot on another instance's port",
     mut(INSTANCES, {"mtg.instances[1].alternate_bind": "127.0.0.1:3140"}), {"TGP320"}),
    ("an instance's second slot public", mut(INSTANCES, {"mtg.instances[0].alternate_bind": "0.0.0.0:4010"}),
     {"TGP301"}),
    ("an instance's second slot's stats public",
     mut(INSTANCES, {"mtg.instances[0].alternate_stats_bind": "[::]:4011"}), {"TGP305"}),
    ("an instance's second slot behind sslh (no blue/green)",
     mut(INSTANCES, {"router.kind": "sslh", "router.http": None, "web.http_bind": ["0.0.0.0:80", "[::]:80"],
                     "mtg.instances[0].alternate_bind": "127.0.0.1:4010"}), {"TGP330"}),
    ("an instance's live slot neither blue nor green", mut(INSTANCES, {"mtg.instance_slots": {"spring": "red"}}),
     {"TGP004"}),
    ("one domain twice", mut(INSTANCES, {"mtg.instances[1].domain": OTHER}), {"TGP341"}),
    ("an instance with the first one's domain", mut(INSTANCES, {"mtg.instances[1].domain": DOMAIN}), {"TGP341"}),
    ("one name twice", mut(INSTANCES, {"mtg.instances[1].name": "spring"}), {"TGP341"}),
    ("an instance's secret for another domain", mut(INSTANCES, {"mtg.instances[1].secret": SECRET}), {"TGP503"}),
    ("an instance's secret malformed", mut(INSTANCES, {"mtg.instances[1].secret": "ee00"}), {"TGP008"}),
    ("an instance on a public address", mut(INSTANCES, {"mtg.instances[1].bind": "0.0.0.0:3150"}), {"TGP301"}),
    ("an instance's stats public", mut(INSTANCES, {"mtg.instances[1].stats_bind": "[::]:3151"}), {"TGP305"}),
    ("an instance's domain routed to the website", mut(INSTANCES, {
        "mtg.instances": [{"name": "spring", "domain": OTHER}],
        "router.routes": [MAGIC, {"match": "sni_exact", "value": OTHER, "backend": "web"}, DEFAULT],
        "router.backends": {"mtg": HAPROXY["router"]["backends"]["mtg"], "web": HAPROXY["router"]["backends"]["web"],
                            "mtg_spring": SPRING_BACKEND}}), {"TGP504"}),
    ("an instance's domain routed to the first mtg", mut(INSTANCES, {
        "mtg.instances": [{"name": "spring", "domain": OTHER}],
        "router.routes": [MAGIC, {"match": "sni_exact", "value": OTHER, "backend": "mtg"}, DEFAULT],
        "router.backends": {"mtg": HAPROXY["router"]["backends"]["mtg"],
                            "web": HAPROXY["router"]["backends"]["web"]}}), {"TGP504", "TGP505"}),
    ("a retired instance still routed to it", mut(INSTANCES, {
        "mtg.instances": [{"name": "spring", "domain": OTHER, "retire_at": "2027-01-01"}],
        "router.routes": [MAGIC, SPRING, DEFAULT],
        "router.backends": {"mtg": HAPROXY["router"]["backends"]["mtg"], "web": HAPROXY["router"]["backends"]["web"],
                            "mtg_spring": SPRING_BACKEND}}), {"TGP342"}),
    ("PROXY to an instance without a PROXY listener", mut(INSTANCES, {
        "mtg.instances": [{"name": "spring", "domain": OTHER}],
        "router.routes": [MAGIC, SPRING, DEFAULT],
        "router.backends": {"mtg": HAPROXY["router"]["backends"]["mtg"], "web": HAPROXY["router"]["backends"]["web"],
                            "mtg_spring": dict(SPRING_BACKEND, send_proxy="v2")}}), {"TGP101"}),
    ("an instance's domain outside the certificate", mut(INSTANCES, {"web.cert_domains": [DOMAIN, OTHER]}),
     {"TGP602"}),
    ("an instance's domain not a hostname", mut(INSTANCES, {"mtg.instances[1].domain": "static"}), {"TGP501"}),
    ("an instance's domain with a trailing dot", mut(INSTANCES, {"mtg.instances[1].domain": THIRD + "."}),
     {"TGP501"}),
    ("an instance named like the second slot", mut(INSTANCES, {"mtg.instances[1].name": "green"}), {"TGP004"}),
    ("an instance name with a dash", mut(INSTANCES, {"mtg.instances[1].name": "sum-mer"}), {"TGP004"}),
    ("retire_at not a date", mut(INSTANCES, {"mtg.instances[1].retire_at": "next friday"}), {"TGP004"}),
    ("sslh: an instance retiring later retires at a run, not on the host", mut(INSTANCES, {
        "router.kind": "sslh", "router.http": None, "web.http_bind": ["0.0.0.0:80", "[::]:80"],
        "mtg.instances[1].retire_at": NOW + 3600}), {"TGP344"}),
    ("an instance key unknown", mut(INSTANCES, {"mtg.instances[1].port": 3150}), {"TGP005"}),
    ("instances not a list", mut(INSTANCES, {"mtg.instances": {"name": "spring"}}), {"TGP004"}),
    # -- schema
    ("unknown topology kind", mut(DIRECT, {"kind": "mesh"}), {"TGP001"}),
    ("unknown router kind", mut(HAPROXY, {"router.kind": "traefik"}), {"TGP002"}),
    ("unknown web kind", mut(DIRECT, {"web.kind": "apache"}), {"TGP003"}),
    ("mtg bind without host", mut(DIRECT, {"mtg.bind": "443"}), {"TGP004"}),
    ("proxy_protocol not a bool", mut(DIRECT, {"proxy_protocol": "maybe"}), {"TGP004"}),
    ("IPv6 in public_ipv4", mut(DIRECT, {"public_ipv4": "::1"}), {"TGP004"}),
    ("unknown route match", mut(HAPROXY, {"router.routes": [MAGIC, {"match": "regex", "value": "x", "backend": "web"},
                                                            DEFAULT]}), {"TGP004"}),
    ("allow-list entry not a CIDR", mut(HAPROXY_PP, {"web.proxy_allow": ["nope"]}), {"TGP004"}),
    ("timeout not a duration", mut(HAPROXY, {"router.timeouts.client": "forever"}), {"TGP004"}),
    ("misspelt PROXY flag", mut(HAPROXY, {"mtg.proxy_protocl_listener": True}), {"TGP005"}),
    ("misspelt top-level key", mut(HAPROXY, {"routers": {}}), {"TGP005"}),
    ("mtg v1", mut(DIRECT, {"mtg.version": "1.0.0"}), {"TGP006"}),
    ("mtg version 'latest'", mut(DIRECT, {"mtg.version": "latest"}), {"TGP006"}),
    ("router given for mtg_direct", mut(DIRECT, {"router": {"kind": "haproxy"}}), {"TGP007"}),
    ("sslh with an HTTP frontend", mut(SSLH, {"router.http": {"listen": ["0.0.0.0:80"]}}), {"TGP007"}),
    ("truncated secret", mut(DIRECT, {"mtg.secret": "ee1234"}), {"TGP008"}),
    # -- PROXY protocol, every hop
    ("router sends PROXY, mtg does not expect it", mut(HAPROXY, {"router.backends.mtg.send_proxy": "v2"}), {"TGP101"}),
    ("mtg expects PROXY, router sends none", mut(HAPROXY, {"mtg.proxy_protocol_listener": True}), {"TGP101"}),
    ("router sends PROXY v1 to a plain mtg", mut(HAPROXY, {"router.backends.mtg.send_proxy": "v1"}), {"TGP101"}),
    ("router sends PROXY to a plain web", mut(HAPROXY, {"router.backends.web.send_proxy": "v2"}), {"TGP102"}),
    ("web stops accepting PROXY", mut(HAPROXY_PP, {"web.proxy_protocol": False}), {"TGP102", "TGP103"}),
    ("direct: fronting without PROXY into a PROXY web", mut(DIRECT, {"mtg.fronting.proxy_protocol": False}),
     {"TGP103"}),
    ("router: fronting sends PROXY, web plain", mut(HAPROXY, {"mtg.fronting.proxy_protocol": True}), {"TGP103"}),
    ("direct: mtg expects PROXY from clients", mut(DIRECT, {"mtg.proxy_protocol_listener": True}), {"TGP104"}),
    ("PROXY on, empty allow-list", mut(HAPROXY_PP, {"web.proxy_allow": []}), {"TGP105"}),
    ("allow-list misses loopback senders", mut(HAPROXY_PP, {"web.proxy_allow": ["10.0.0.0/8"]}), {"TGP106"}),
    ("allow-list misses ::1 for a localhost fronting",
     mut(DIRECT, {"mtg.version": "2.3.0", "mtg.fronting.host": "localhost"}), {"TGP106"}),
    ("sslh asked for PROXY everywhere", mut(router_base("sslh", pp=True), {"web.http_bind": ["0.0.0.0:80", "[::]:80"]}),
     {"TGP107"}),
    ("sslh asked for PROXY to a plain mtg", mut(SSLH, {"router.backends.mtg.send_proxy": "v2"}), {"TGP101", "TGP107"}),
    ("nginx_stream asked for PROXY v2", router_base("nginx_stream", pp=True, send="v2"), {"TGP108"}),
    ("nginx_stream PROXY to one backend only", mut(NGINX, {"router.backends.mtg.send_proxy": "v1",
                                                           "mtg.proxy_protocol_listener": True}), {"TGP108"}),
    ("router sends PROXY to sshd", mut(HAPROXY, {"other_services": SSHD,
                                                 "router.backends.ssh": {"address": "127.0.0.1:22", "send_proxy": "v2"},
                                                 "router.routes": [SSH_ROUTE] + ROUTES}), {"TGP109"}),
    # -- router
    ("TLS-terminating router", mut(HAPROXY, {"router.terminates_tls": True}), {"TGP201"}),
    ("haproxy timeout client 30s", mut(HAPROXY, {"router.timeouts.client": "30s"}), {"TGP202"}),
    ("nginx proxy_timeout 10m", mut(NGINX, {"router.timeouts.tunnel": "10m"}), {"TGP202"}),
    ("mtg idle timeout 30s", mut(DIRECT, {"mtg.idle_timeout": "30s"}), {"TGP203"}),
    ("maxconn below mtg concurrency", mut(HAPROXY, {"router.maxconn": 4096}), {"TGP204"}),
    ("haproxy 1.7", mut(HAPROXY, {"router.version": "1.7.9"}), {"TGP205"}),
    ("nginx 1.10", mut(NGINX, {"router.version": "1.10.3"}), {"TGP205"}),
    ("no default route", mut(HAPROXY, {"router.routes": [MAGIC]}), {"TGP206"}),
    ("transparent haproxy", mut(HAPROXY, {"router.transparent": True}), {"TGP207"}),
    ("transparent nginx_stream", mut(NGINX, {"router.transparent": True}), {"TGP207"}),
    ("sslh transparent on [::]", mut(SSLH, {"router.transparent": True, "public_ipv6": DELETE}), {"TGP208"}),
    ("sslh transparent, IPv6 listener of its own",
     mut(SSLH_TRANSPARENT, {"router.listen": ["0.0.0.0:443", "[2001:db8::10]:443"]}), {"TGP208"}),
    ("sslh transparent, web on another machine",
     mut(SSLH_TRANSPARENT, {"router.backends.web.address": "198.51.100.7:443"}), {"TGP209", "TGP510"}),
    ("sslh transparent, backend on ::1",
     mut(SSLH_TRANSPARENT, {"router.backends.web.address": "[::1]:8443", "web.https_bind": "[::1]:8443",
                            "mtg.fronting.host": "::1", "web.proxy_allow": ["::1/128"]}), {"TGP209"}),
    ("sslh transparent, ssh to this host's public IPv4 (the policy route is for loopback only)",
     mut(SSLH_TRANSPARENT, {"other_services": SSHD, "router.backends.ssh": {"address": V4 + ":22"},
                            "router.routes": [MAGIC, SSH_ROUTE, DEFAULT]}), {"TGP209"}),
    ("sslh transparent, backend named localhost (resolves to ::1 too)",
     mut(SSLH_TRANSPARENT, {"router.backends.mtg.address": "localhost:3128"}), {"TGP209"}),
    # -- listeners and exposure
    ("mtg on 0.0.0.0 behind a router", mut(HAPROXY, {"mtg.bind": "0.0.0.0:3128"}), {"TGP301"}),
    ("mtg on a public address behind a router",
     mut(HAPROXY, {"mtg.bind": V4 + ":3128", "router.backends.mtg.address": V4 + ":3128"}), {"TGP301"}),
    ("mtg on a private address behind a router", mut(HAPROXY, {"mtg.bind": "10.0.0.5:3128",
                                                               "router.backends.mtg.address": "10.0.0.5:3128"}),
     {"TGP302"}),
    ("stats on a private address", mut(DIRECT, {"mtg.stats_bind": "10.1.2.3:3129"}), {"TGP302"}),
    ("direct: mtg on loopback", mut(DIRECT, {"mtg.bind": "127.0.0.1:443"}), {"TGP303"}),
    ("router on loopback only", mut(HAPROXY, {"router.listen": ["127.0.0.1:443"]}), {"TGP303"}),
    ("direct: mtg on port 4443", mut(DIRECT, {"mtg.bind": "[::]:4443"}), {"TGP304"}),
    ("router on port 8443 too", mut(HAPROXY, {"router.listen": ["0.0.0.0:443", "[::]:443", "0.0.0.0:9443"]}),
     {"TGP304"}),
    ("stats on 0.0.0.0", mut(DIRECT, {"mtg.stats_bind": "0.0.0.0:3129"}), {"TGP305"}),
    ("web TLS on 0.0.0.0", mut(DIRECT, {"web.https_bind": "0.0.0.0:8443"}), {"TGP306"}),
    ("router without IPv6 on a dual-stack host", mut(HAPROXY, {"router.listen": ["0.0.0.0:443"]}), {"TGP310"}),
    ("direct: mtg on the IPv4 address only", mut(DIRECT, {"mtg.bind": V4 + ":443"}), {"TGP310"}),
    ("nginx web :80 on IPv4 only", mut(SSLH, {"web.kind": "nginx", "web.http_bind": ["0.0.0.0:80"]}), {"TGP310"}),
    ("nginx_stream lone [::]:443", mut(NGINX, {"router.listen": ["[::]:443"]}), {"TGP311"}),
    ("haproxy lone [::]:443", mut(HAPROXY, {"router.listen": ["[::]:443"]}), {"TGP312"}),
    ("sshd on :443 next to the router", mut(HAPROXY, {"other_services": [{"name": "sshd", "bind": "0.0.0.0:443"}]}),
     {"TGP320"}),
    ("web on public :80 while the router owns it", mut(HAPROXY, {"web.http_bind": "0.0.0.0:80"}), {"TGP320"}),
    ("exporter on the stats port", mut(DIRECT, {"other_services": [{"name": "exporter", "bind": "127.0.0.1:3129"}]}),
     {"TGP320"}),
    ("apache on 0.0.0.0:80 vs Caddy on [::]:80",
     mut(DIRECT, {"other_services": [{"name": "apache", "bind": "0.0.0.0:80"}]}), {"TGP320"}),
    ("mtg and web on the same port", mut(HAPROXY, {"mtg.bind": "127.0.0.1:8443",
                                                   "router.backends.mtg.address": "127.0.0.1:8443"}),
     {"TGP320", "TGP403"}),  # and fronting to 127.0.0.1:8443 now reaches mtg itself
    # -- blue/green mtg
    ("second mtg on the first one's port", mut(HAPROXY, {"mtg.alternate_bind": "127.0.0.1:3128"}), {"TGP320"}),
    ("second mtg's stats on the web port", mut(NGINX, {"mtg.alternate_stats_bind": "127.0.0.1:8443"}), {"TGP320"}),
    ("second mtg on a public address", mut(HAPROXY, {"mtg.alternate_bind": "0.0.0.0:3132"}), {"TGP301"}),
    ("second mtg's stats public", mut(HAPROXY, {"mtg.alternate_stats_bind": "0.0.0.0:3133"}), {"TGP305"}),
    ("blue/green asked of sslh", mut(SSLH, {"mtg.blue_green": True}), {"TGP330"}),
    ("blue/green asked of mtg on :443", mut(DIRECT, {"mtg.blue_green": True}), {"TGP330"}),
    ("a second mtg's port with blue/green off",
     mut(HAPROXY, {"mtg.blue_green": False, "mtg.alternate_bind": "127.0.0.1:3140"}), {"TGP330"}),
    # -- fronting
    ("fronting key host on 2.2.8", mut(DIRECT, {"mtg.fronting.key": "host"}), {"TGP401"}),
    ("fronting key ip on 2.3.0", mut(DIRECT, {"mtg.version": "2.3.0", "mtg.fronting.key": "ip"}), {"TGP401"}),
    ("hostname fronting on 2.2.8", mut(DIRECT, {"mtg.fronting.host": "localhost",
                                                "web.proxy_allow": ["127.0.0.1/32", "::1/128"]}), {"TGP402"}),
    ("direct: fronting to itself", mut(DIRECT, {"mtg.fronting.port": 443}), {"TGP403"}),
    ("fronting to the domain on 443", mut(DIRECT, {"mtg.version": "2.3.0", "mtg.fronting.host": DOMAIN,
                                                   "mtg.fronting.port": 443}), {"TGP403"}),
    ("fronting to the public IP through the router",
     mut(HAPROXY, {"mtg.fronting.host": V4, "mtg.fronting.port": 443}), {"TGP403"}),
    ("fronting to the domain on 2.2.8", mut(DIRECT, {"mtg.fronting.host": DOMAIN, "mtg.fronting.port": 443}),
     {"TGP402", "TGP403"}),
    ("fronting to a port nobody serves", mut(DIRECT, {"mtg.fronting.port": 9443}), {"TGP404"}),
    ("fronting to the web's HTTP port", mut(HAPROXY, {"mtg.fronting.port": 8080}), {"TGP404"}),
    # -- domain, secret, routes
    ("domain not a hostname", mut(DIRECT, {"domain": "localhost"}), {"TGP501"}),
    # the roles write the domain as given: the validator does not canonicalise it silently
    ("domain with a trailing newline", mut(DIRECT, {"domain": DOMAIN + "\n"}), {"TGP501"}),
    ("domain with a trailing dot", mut(DIRECT, {"domain": DOMAIN + "."}), {"TGP501"}),
    ("domain in upper case", mut(DIRECT, {"domain": DOMAIN.upper()}), {"TGP501"}),
    ("domain with a quote", mut(DIRECT, {"domain": DOMAIN + '"'}), {"TGP501"}),
    # values reach the routers' configurations as written: nothing that could end a value there passes
    ("alpn value that would add an sslh route to a remote address",
     mut(SSLH, {"router.routes": [{"match": "alpn", "value": 'h2"; }, { host: "198.51.100.9"; port: "443',
                                   "backend": "web"}, MAGIC, DEFAULT]}), {"TGP004"}),
    ("backend name with a quote",
     mut(HAPROXY, {"router.backends": dict(HAPROXY["router"]["backends"], **{'x"y': {"address": "127.0.0.1:22"}})}),
     {"TGP004", "TGP510"}),
    ("backend host with a line break (a second haproxy server line)",
     mut(HAPROXY, {"router.backends.web.address": "127.0.0.1\nserver evil 198.51.100.9:443"}), {"TGP004"}),
    ("backend host with a quote (sslh libconfig)",
     mut(SSLH, {"router.backends.web.address": '127.0.0.1"; port: "8443":8443'}), {"TGP004"}),
    ("bind with a space", mut(DIRECT, {"mtg.bind": "0.0.0.0 :443"}), {"TGP004"}),
    ("secret for 'localhost'", mut(DIRECT, {"mtg.secret": secret_for("localhost")}), {"TGP502"}),
    ("secret for another domain", mut(DIRECT, {"mtg.secret": secret_for("other.example.com")}), {"TGP503"}),
    ("magic route for another name", mut(HAPROXY, {"router.routes[0].value": "other.example.com"}), {"TGP504"}),
    ("magic route to the web backend", mut(HAPROXY, {"router.routes[0].backend": "web"}), {"TGP504"}),
    ("no route and no default", mut(HAPROXY, {"router.routes": [WWW_ROUTE]}), {"TGP206", "TGP504"}),
    ("second name routed to mtg", mut(HAPROXY, {"router.routes": [{"match": "sni_exact", "value": "alt.example.com",
                                                                   "backend": "mtg"}] + ROUTES}), {"TGP505"}),
    ("same name routed twice", mut(HAPROXY, {"router.routes": [MAGIC, WWW_ROUTE, WWW_ROUTE, DEFAULT]}), {"TGP506"}),
    ("two default routes", mut(NGINX, {"router.routes": ROUTES + [DEFAULT]}), {"TGP506"}),
    ("haproxy: suffix route shadows the magic name",
     mut(HAPROXY, {"router.routes": [{"match": "sni_suffix", "value": "example.com", "backend": "web"}] + ROUTES}),
     {"TGP504", "TGP507"}),
    ("sslh: catch-all first", mut(SSLH, {"router.routes": [DEFAULT, MAGIC]}), {"TGP504", "TGP507"}),
    ("haproxy: suffix shadows another exact name",
     mut(HAPROXY, {"router.routes": [MAGIC, {"match": "sni_suffix", "value": "example.com", "backend": "mtg"},
                                     WWW_ROUTE, DEFAULT]}), {"TGP507"}),
    ("ALPN route before the magic route", mut(HAPROXY, {"router.routes": [{"match": "alpn", "value": "h2",
                                                                           "backend": "web"}] + ROUTES}), {"TGP508"}),
    ("route to an undefined backend", mut(HAPROXY, {"router.routes": [MAGIC, dict(WWW_ROUTE, backend="ghost"),
                                                                      DEFAULT]}), {"TGP509"}),
    ("backend nobody deploys", mut(HAPROXY, {"router.backends.mtg.address": "127.0.0.1:9999"}), {"TGP510"}),
    ("backend pointing back at the router", mut(HAPROXY, {"router.backends.web.address": "127.0.0.1:443"}),
     {"TGP510"}),
    # all of :80 goes there, whatever the ACME challenge (HTTP-01: TGP601)
    ("dns-01, :80 passed to nothing",
     mut(HAPROXY, {"router.http": {"acme_passthrough_to": "127.0.0.1:8081"}, "web.acme": {"challenge": "dns-01"}}),
     {"TGP510"}),
    ("dns-01, :80 passed back to the router",
     mut(NGINX, {"router.http": {"acme_passthrough_to": "127.0.0.1:80"}, "web.acme": {"challenge": "dns-01"}}),
     {"TGP510"}),
    ("nginx_stream asked to route SSH", mut(NGINX, {"other_services": SSHD,
                                                    "router.backends.ssh": {"address": "127.0.0.1:22"},
                                                    "router.routes": [SSH_ROUTE] + ROUTES}), {"TGP512"}),
    # -- web / ACME
    ("HTTP-01 without ACME passthrough", mut(HAPROXY, {"router.http": {"acme_passthrough_to": None}}), {"TGP601"}),
    ("ACME passthrough to the wrong port", mut(HAPROXY, {"router.http": {"acme_passthrough_to": "127.0.0.1:8081"}}),
     {"TGP601"}),
    ("direct: web :80 on loopback", mut(DIRECT, {"web.http_bind": "127.0.0.1:8080"}), {"TGP601"}),
    ("sslh: web :80 on loopback", mut(SSLH, {"web.http_bind": "127.0.0.1:80"}), {"TGP601"}),
    ("certificate for another name", mut(DIRECT, {"web.cert_domains": ["www.example.com"]}), {"TGP602"}),
    # -- capacity
    ("negative capacity", mut(HAPROXY, {"capacity": {"connections": -10}}), {"TGP701"}),
    ("memory budget too small", mut(DIRECT, {"capacity": {"connections": 50000, "memory_mb": 1024}}), {"TGP701"}),
    ("memory in bytes", mut(NGINX, {"capacity": {"memory_mb": 4294967296}}), {"TGP701"}),
    ("capacity not a mapping", mut(SSLH, {"capacity": 10000}), {"TGP701"}),
    ("mtg concurrency below capacity", mut(HAPROXY, {"capacity": {"connections": 20000}, "mtg.concurrency": 8192}),
     {"TGP702"}),
    ("router maxconn below capacity",
     mut(NGINX, {"capacity": {"connections": 20000}, "router.maxconn": 15000, "mtg.concurrency": DELETE}),
     {"TGP703", "TGP204"}),
    # -- sslh flavours
    ("sslh-select above what select() holds", mut(SSLH, {"router.flavour": "select",
                                                         "capacity": {"connections": 2000}}), {"TGP210"}),
    ("sslh-select without a capacity", mut(SSLH, {"router.flavour": "select"}), {"TGP211"}),
    ("flavour on haproxy", mut(HAPROXY, {"router.flavour": "ev"}), {"TGP007"}),
    ("unknown sslh flavour", mut(SSLH, {"router.flavour": "threads"}), {"TGP004"}),
    # -- the fleet's websites
    ("the same website as another host", mut(DIRECT, {"site": {"shared_with": ["proxy-2", "proxy-3"]}}), {"TGP603"}),
    ("site shared_with not a list of names", mut(HAPROXY, {"site": {"shared_with": [""]}}), {"TGP004"}),
    # -- platform
    ("platform not supported", mut(DIRECT, {"platform": {"distribution": "Fedora", "version": "40"}}), {"TGP801"}),
    ("platform: Debian 11", mut(HAPROXY, {"platform": {"distribution": "Debian", "version": "11.9"}}), {"TGP801"}),
    ("platform untested", mut(NGINX, {"platform": {"distribution": "Ubuntu", "version": "24.04"}}), {"TGP802"}),
    ("platform with a line break", mut(SSLH, {"platform": {"distribution": "Debian\nX", "version": "12"}}),
     {"TGP004"}),
    ("platform unknown key", mut(DIRECT, {"platform": {"distribution": "Debian", "version": "12", "arch": "x"}}),
     {"TGP005"}),
    # -- several at once
    ("everything at once", mut(HAPROXY, {"router.terminates_tls": True, "router.timeouts.server": "60s",
                                         "mtg.bind": "0.0.0.0:3128", "mtg.stats_bind": "[::]:3129"}),
     {"TGP201", "TGP202", "TGP301", "TGP305"}),
]


def codes(findings):
    return set(finding.code for finding in findings)


def test_matrix_size():
    assert len(BAD) >= 40 and len(GOOD) >= 10
    assert len(set(name for name, doc, expected in BAD)) == len(BAD)
    assert len(set(json.dumps(doc, sort_keys=True) for name, doc, expected in BAD)) == len(BAD)
    kinds = set((doc.get("kind", "mtg_direct"), (doc.get("router") or {}).get("kind"),
                 (doc.get("web") or {}).get("kind", "caddy")) for name, doc in GOOD)
    assert {k[0] for k in kinds} == {"mtg_direct", "sni_router"}
    assert {k[1] for k in kinds} >= {None, "haproxy", "nginx_stream", "sslh"}
    assert {k[2] for k in kinds} == {"caddy", "nginx"}


@pytest.mark.parametrize("name,doc", GOOD, ids=[name for name, doc in GOOD])
def test_good_topologies_have_no_findings(name, doc):
    findings = v.validate(doc)
    assert [str(f) for f in findings] == []


@pytest.mark.parametrize("name,doc,expected", BAD, ids=[name for name, doc, expected in BAD])
def test_bad_topologies_yield_exactly_the_expected_codes(name, doc, expected):
    findings = v.validate(doc)
    assert codes(findings) == expected, [str(f) for f in findings]
    for finding in findings:
        assert finding.severity == v.CHECKS[finding.code]["severity"]
        assert finding.vars and all(isinstance(var, str) and var for var in finding.vars)
        assert finding.msg and finding.breaks and finding.fix


def test_every_check_is_exercised_by_the_matrix_or_a_dns_test():
    covered = set()
    for dummy_name, doc, expected in BAD:
        covered |= expected
    covered |= {"TGP901", "TGP902"}  # resolver tests below
    covered |= ROLE_CODES_PRODUCED  # the roles' input checks: test_every_role_check_code_is_produced
    assert covered == set(v.CHECKS)


# a call that produces each role input code (the one finding type, module_utils/findings.py)
ROLE_CODES_PRODUCED = {"TGP950", "TGP951", "TGP952", "TGP953", "TGP954"}


def test_every_role_check_code_is_produced():
    from ansible_collections.tgproxy.stealth.plugins.module_utils import findings, variables
    assert set(findings.ROLE_CHECKS) == ROLE_CODES_PRODUCED
    produced = set()
    try:
        t.acme_sh_release("9.9.9", "https://example.com")
    except t.TopologyError as exc:
        produced.add(exc.code)
        assert isinstance(exc, findings.Finding) and exc.var == "acme_sh_release_checksum"
    produced |= {e.code for e in t.mtg_preflight({"domain": "x", "bind_to": "[::]:443"})}
    produced |= {e.code for e in t.web_preflight({"domain": "x", "https_bind": ["127.0.0.1"]}, "caddy")}
    produced |= {e.code for e in t.acme_sh_preflight({"domains": []})}
    produced |= {e.split()[0] for e in variables.value_errors({"haproxy_log": "a\nb"})}
    assert produced == ROLE_CODES_PRODUCED
    for found in (t.mtg_preflight({"domain": "x", "bind_to": "[::]:443"})[0], v.validate(mut(HAPROXY, {"mtg.proxy_protocol_listener": True}))[0]):
        assert isinstance(found, findings.Finding) and found.code in v.CHECKS and found.fix and found.breaks


def test_findings_are_sorted_and_returned_all_at_once():
    findings = v.validate(BAD[-1][1])
    assert [f.code for f in findings] == sorted(f.code for f in findings)
    assert len(findings) == 4


def test_finding_as_dict_and_text():
    finding = v.validate(mut(HAPROXY, {"mtg.proxy_protocol_listener": True}))[0]
    data = finding.as_dict()
    assert set(data) == {"code", "severity", "vars", "var", "msg", "breaks", "fix"}
    assert data["vars"] == ["router.backends.mtg.send_proxy", "mtg.proxy_protocol_listener"]
    assert data["severity"] == "error" and "hangs" in data["breaks"]
    assert str(finding).startswith("TGP101 error [router.backends.mtg.send_proxy, mtg.proxy_protocol_listener]: ")
    assert "TGP101" in v.format_findings([finding]) and "TGP101" in repr(finding)
    assert v.errors([finding]) == [finding] and v.warnings([finding]) == []


@pytest.mark.parametrize("doc", [None, "sni_router", ["kind"], 42])
def test_non_mapping_topology(doc):
    assert [f.code for f in v.validate(doc)] == ["TGP004"]
    assert v.normalise(doc) is None


@pytest.mark.parametrize("secret", ["ee1234", "ee" + KEY.hex() + "ff", secret_for("localhost"),
                                    secret_for("other.example.com"), "dd" + KEY.hex()])
def test_findings_never_echo_the_secret(secret):
    findings = v.validate(mut(DIRECT, {"mtg.secret": secret}))
    assert findings
    assert secret not in json.dumps([f.as_dict() for f in findings])


def test_secret_of_the_wrong_type_is_not_echoed():
    findings = v.validate(mut(DIRECT, {"mtg.secret": 123456789}))
    assert codes(findings) == {"TGP004"} and "123456789" not in str(findings[0])


# --------------------------------------------------------------------------
# Normalisation: the defaults the roles read
# --------------------------------------------------------------------------
def test_normalise_fills_router_defaults():
    doc = v.normalise({"kind": "sni_router", "domain": "Proxy.Example.com."})
    assert doc["domain"] == DOMAIN and doc["proxy_protocol"] is False
    assert doc["mtg"]["bind"] == "127.0.0.1:3128" and doc["mtg"]["proxy_protocol_listener"] is False
    assert doc["mtg"]["fronting"] == {"host": "127.0.0.1", "port": 8443, "proxy_protocol": False, "key": "ip"}
    router = doc["router"]
    assert router["kind"] == "haproxy" and router["listen"] == ["0.0.0.0:443", "[::]:443"]
    assert router["maxconn"] == 20000 and router["terminates_tls"] is False
    assert router["timeouts"] == {"client": "1h", "server": "1h", "tunnel": "1h", "connect": "5s"}
    assert router["backends"] == {"mtg": {"address": "127.0.0.1:3128", "send_proxy": "none"},
                                  "web": {"address": "127.0.0.1:8443", "send_proxy": "none"}}
    assert router["routes"] == [{"match": "sni_exact", "value": DOMAIN, "backend": "mtg"},
                                {"match": "default", "value": None, "backend": "web"}]
    assert router["http"] == {"listen": ["0.0.0.0:80", "[::]:80"], "acme_passthrough_to": "127.0.0.1:8080",
                              "redirect_https": True}
    web = doc["web"]
    assert web["http_bind"] == ["127.0.0.1:8080"] and web["https_bind"] == ["127.0.0.1:8443"]
    assert web["proxy_allow"] == ["127.0.0.1/32", "::1/128"] and web["cert_domains"] == [DOMAIN]
    assert web["acme"] == {"challenge": "http-01"}
    assert doc["other_services"] == []


def test_normalise_direct_defaults():
    doc = v.normalise({"domain": DOMAIN, "mtg": {"version": "v2.3.0"}})
    assert doc["kind"] == "mtg_direct" and doc["router"] is None and doc["proxy_protocol"] is True
    assert doc["mtg"]["bind"] == "[::]:443" and doc["mtg"]["proxy_protocol_listener"] is False
    assert doc["mtg"]["version"] == "2.3.0" and doc["mtg"]["fronting"]["key"] == "host"
    assert doc["mtg"]["fronting"]["proxy_protocol"] is True and doc["web"]["proxy_protocol"] is True
    assert doc["web"]["http_bind"] == ["[::]:80"]
    assert v.normalise({"domain": DOMAIN, "web": {"kind": "nginx"}})["web"]["http_bind"] == ["0.0.0.0:80", "[::]:80"]


@pytest.mark.parametrize("receiver,backend,expected", [
    ("mtg.proxy_protocol_listener", "mtg", "v2"),
    ("web.proxy_protocol", "web", "v2"),
])
def test_senders_follow_their_receiver(receiver, backend, expected):
    doc = mut({"kind": "sni_router", "domain": DOMAIN}, {receiver: True})
    norm = v.normalise(doc)
    assert norm["router"]["backends"][backend]["send_proxy"] == expected
    assert v.validate(doc) == []


def test_sender_defaults_per_router_kind():
    nginx = v.normalise({"kind": "sni_router", "domain": DOMAIN, "proxy_protocol": True,
                         "router": {"kind": "nginx_stream"}})
    assert set(b["send_proxy"] for b in nginx["router"]["backends"].values()) == {"v1"}
    sslh = {"kind": "sni_router", "domain": DOMAIN, "proxy_protocol": True, "router": {"kind": "sslh"}}
    assert v.normalise(sslh)["router"]["http"] is None
    assert codes(v.validate(sslh)) == {"TGP107"}


def test_normalise_accepts_strings_for_lists_bools_and_ints():
    doc = v.normalise(mut(HAPROXY, {"router.listen": "0.0.0.0:443", "router.terminates_tls": "no",
                                    "mtg.concurrency": "100", "router.routes[0].value": "*.Example.com",
                                    "router.routes[0].match": "sni_suffix"}))
    assert doc["router"]["listen"] == ["0.0.0.0:443"] and doc["router"]["terminates_tls"] is False
    assert doc["mtg"]["concurrency"] == 100 and doc["router"]["routes"][0]["value"] == "example.com"


@pytest.mark.parametrize("change,var", [
    ({"mtg.concurrency": 0}, "mtg.concurrency"),
    ({"mtg.concurrency": True}, "mtg.concurrency"),
    ({"mtg.fronting.port": 70000}, "mtg.fronting.port"),
    ({"mtg.fronting.host": "bad host!"}, "mtg.fronting.host"),
    ({"mtg.fronting.key": "addr"}, "mtg.fronting.key"),
    ({"mtg.idle_timeout": "soon"}, "mtg.idle_timeout"),
    ({"mtg": "all defaults"}, "mtg"),
    ({"web.acme": "auto"}, "web.acme"),
    ({"web.acme.challenge": "tls-alpn-01"}, "web.acme.challenge"),
    ({"web.cert_domains": [""]}, "web.cert_domains"),
    ({"web.https_bind": []}, "web.https_bind"),
    ({"web.http_bind": ["80"]}, "web.http_bind[0]"),
    ({"other_services": {"name": "sshd"}}, "other_services"),
    ({"other_services": [{"name": "sshd"}]}, "other_services[0].bind"),
    ({"other_services": [{"bind": "0.0.0.0:22"}]}, "other_services[0].name"),
    ({"router.version": "latest"}, "router.version"),
    ({"router.maxconn": -5}, "router.maxconn"),
    ({"router.backends": ["mtg"]}, "router.backends"),
    ({"router.backends.web": "127.0.0.1:8443"}, "router.backends.web"),
    ({"router.backends.web.send_proxy": "v3"}, "router.backends.web.send_proxy"),
    ({"router.routes": {"mtg": DOMAIN}}, "router.routes"),
    ({"router.routes[1].backend": None}, "router.routes[1].backend"),
    ({"router.routes[1]": {"value": "x", "backend": "web"}}, "router.routes[1].match"),
    ({"router.routes[0].value": "not a name"}, "router.routes[0].value"),
    ({"router.http.acme_passthrough_to": "nowhere"}, "router.http.acme_passthrough_to"),
])
def test_malformed_values_name_the_variable(change, var):
    findings = v.validate(mut(HAPROXY, change))
    assert "TGP004" in codes(findings), [str(f) for f in findings]
    assert var in [f.vars[0] for f in findings if f.code == "TGP004"]


def test_maxconn_null_disables_the_capacity_check():
    assert v.validate(mut(HAPROXY, {"router.maxconn": None, "mtg.concurrency": 10 ** 6})) == []


def test_unknown_kind_runs_only_kind_independent_checks():
    doc = mut(DIRECT, {"kind": "mesh", "mtg.stats_bind": "0.0.0.0:3129", "mtg.fronting.port": 443})
    assert codes(v.validate(doc)) == {"TGP001", "TGP305"}


@pytest.mark.parametrize("value,seconds", [("1h", 3600), ("90m", 5400), ("1h30m", 5400), ("500ms", 0.5),
                                           ("3600", 3600), (3600, 3600), ("2d", 172800), ("", None),
                                           ("1x", None), (True, None), (-1, None), ("h1", None)])
def test_parse_duration(value, seconds):
    assert v._parse_duration(value) == seconds  # pylint: disable=protected-access


def test_capacity_sets_the_defaults_it_implies():
    doc = v.normalise(mut(NGINX, {"capacity": {"connections": 30000, "cpus": 2}, "mtg.concurrency": DELETE}))
    assert doc["mtg"]["concurrency"] == 30000
    assert doc["router"]["maxconn"] == doc["tuning"]["router_maxconn"] == 37500
    assert doc["tuning"]["nginx_worker_connections"] == 38012
    assert doc["capacity"]["cpus"] == 2
    plain = v.normalise(NGINX)
    assert plain["tuning"] is None and plain["router"]["maxconn"] == v.ROUTER_DEFAULT_MAXCONN


def test_capacity_finding_names_the_key():
    finding = v.validate(mut(HAPROXY, {"capacity": {"connections": 50000, "memory_mb": 1024}}))[0]
    assert finding.vars == ["capacity.memory_mb"]
    assert "raise capacity.memory_mb to 3381" in finding.msg


def docs_row(code):
    """The README's table line for a check (placeholders escaped for Markdown)."""
    check = v.CHECKS[code]
    cells = [re.sub(r"<([^<>]+)>", r"&lt;\1&gt;", check[key]) for key in ("title", "breaks", "fix")]
    return "| %s | %s | %s | %s | %s |" % (code, check["severity"], cells[0], cells[1], cells[2])


def test_docs_table_lists_every_check():
    with open(os.path.join(ROOT, "README.md")) as handle:
        lines = handle.read().splitlines()
    rows = [line for line in lines if line.startswith("| TGP")]
    assert rows == [docs_row(code) for code in sorted(v.CHECKS)]


# --------------------------------------------------------------------------
# DNS checks: only with an injected resolver, never real DNS
# --------------------------------------------------------------------------
def fake_resolver(table):
    def resolve(name):
        if name not in table:
            raise OSError("NXDOMAIN")
        return table[name]
    return resolve


@pytest.mark.parametrize("table,expected", [
    ({DOMAIN: [V4, V6]}, set()),
    ({DOMAIN: [V4, "2001:db8::99"]}, {"TGP901"}),
    ({DOMAIN: ["198.51.100.1"]}, {"TGP901"}),
    ({}, {"TGP901"}),
])
def test_dns_of_the_domain(table, expected):
    assert codes(v.validate(HAPROXY, resolver=fake_resolver(table))) == expected


def test_dns_aaaa_without_public_ipv6_is_a_warning():
    findings = v.validate(mut(HAPROXY, {"public_ipv6": DELETE}), resolver=fake_resolver({DOMAIN: [V4, V6]}))
    assert codes(findings) == {"TGP901"} and findings[0].vars == ["domain", "public_ipv6"]
    assert findings[0].severity == "warning"


def test_dns_checks_need_a_resolver_and_public_addresses():
    assert v.validate(mut(HAPROXY, {"public_ipv4": DELETE, "public_ipv6": DELETE}),
                      resolver=fake_resolver({})) == []


def test_fronting_hostname_resolving_to_this_host():
    doc = mut(DIRECT, {"mtg.version": "2.3.0", "mtg.fronting.host": "front.example.net", "mtg.fronting.port": 443})
    table = {DOMAIN: [V4, V6], "front.example.net": [V4]}
    assert codes(v.validate(doc, resolver=fake_resolver(table))) == {"TGP404", "TGP902"}
    # without a resolver the hostname is simply not the web server
    assert codes(v.validate(doc)) == {"TGP404"}
    table["front.example.net"] = ["198.51.100.1"]
    assert codes(v.validate(doc, resolver=fake_resolver(table))) == {"TGP404"}


def test_default_resolver_uses_getaddrinfo(monkeypatch):
    def getaddrinfo(name, port, family, socktype):
        assert name == DOMAIN
        return [(2, 1, 6, "", (V4, 0)), (10, 1, 6, "", (V6, 0, 0, 0)), (2, 1, 6, "", (V4, 0))]
    monkeypatch.setattr(v.socket, "getaddrinfo", getaddrinfo)
    assert v.default_resolver(DOMAIN) == [V6, V4]


# --------------------------------------------------------------------------
# Properties: random valid topologies pass; one flipped PROXY flag is caught
# --------------------------------------------------------------------------
LABEL = st.from_regex(r"\A[a-z][a-z0-9]{0,10}\Z")
PUBLIC_V4 = ("203.0.113.10", "198.51.100.7", "192.0.2.33", "8.8.4.4")
PUBLIC_V6 = ("2001:db8::10", "2001:db8:1::5", "2a01:4f8::1")
VERSIONS = ("2.0.0", "2.1.7", "2.2.8", "2.2.9", "2.3.0")
ROUTER_VERSIONS = {"haproxy": (None, "2.8.16", "2.4.22", "1.8.0"), "nginx_stream": (None, "1.24.0", "1.18.0"),
                   "sslh": (None, "1.22c", "2.1.1")}
LONG = ("1h", "2h", "90m", "3600s", "1d", 7200)


def join(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


@st.composite
def topologies(draw):
    kind = draw(st.sampled_from(("mtg_direct", "sni_router")))
    rkind = draw(st.sampled_from(v.ROUTER_KINDS))
    wkind = draw(st.sampled_from(v.WEB_KINDS))
    labels = draw(st.lists(LABEL, min_size=1, max_size=3))
    domain = ".".join(labels + [draw(st.sampled_from(("com", "net", "org", "example")))])
    parent = domain.split(".", 1)[1]
    v4 = draw(st.one_of(st.none(), st.sampled_from(PUBLIC_V4)))
    v6 = draw(st.one_of(st.none(), st.sampled_from(PUBLIC_V6)))
    pp = draw(st.booleans()) and not (kind == "sni_router" and rkind == "sslh")
    version = draw(st.sampled_from(VERSIONS))
    ports = draw(st.lists(st.integers(1025, 65000), min_size=4, max_size=4, unique=True))
    mtg_port, stats_port, web_tls_port, web_http_port = ports
    loop = draw(st.sampled_from(("127.0.0.1", "::1")))
    host_key = version not in ("2.0.0", "2.1.7", "2.2.8")
    fronting_host = draw(st.sampled_from((loop, "localhost"))) if host_key and loop == "127.0.0.1" else loop
    fronting = {"host": fronting_host, "port": web_tls_port, "proxy_protocol": pp}
    if draw(st.booleans()):
        fronting["key"] = "host" if host_key else "ip"
    acme = draw(st.sampled_from(("http-01", "dns-01", "manual")))
    concurrency = draw(st.integers(1, 20000))
    doc = {
        "kind": kind, "domain": domain, "proxy_protocol": pp,
        "mtg": {"version": draw(st.sampled_from((version, "v" + version))), "fronting": fronting,
                "concurrency": concurrency, "stats_enabled": draw(st.booleans()),
                "stats_bind": join(draw(st.sampled_from(("127.0.0.1", "::1"))), stats_port),
                "proxy_protocol_listener": pp and kind == "sni_router"},
        "web": {"kind": wkind, "https_bind": [join(loop, web_tls_port)], "proxy_protocol": pp,
                "proxy_allow": draw(st.sampled_from((["127.0.0.1/32", "::1/128"], ["127.0.0.0/8", "::1/128"]))),
                "acme": {"challenge": acme},
                "cert_domains": draw(st.sampled_from(([domain], ["*." + parent], [domain, "www." + domain])))},
    }
    if v4:
        doc["public_ipv4"] = v4
    if v6:
        doc["public_ipv6"] = v6
    idle = draw(st.sampled_from((None, "1m", "5m", "1h")))
    if idle:
        doc["mtg"]["idle_timeout"] = idle
    if draw(st.booleans()):
        doc["mtg"]["secret"] = secret_for(domain, draw(st.binary(min_size=16, max_size=16).filter(any)))
    public_http = ["[::]:80"] if wkind == "caddy" else ["0.0.0.0:80", "[::]:80"]
    if wkind == "caddy" and draw(st.booleans()):
        public_http = ["0.0.0.0:80"]  # Go listens dual-stack on either wildcard
    want_ssh = kind == "sni_router" and rkind != "nginx_stream" and draw(st.booleans())
    if want_ssh:
        doc["other_services"] = [{"name": "sshd", "bind": draw(st.sampled_from(("0.0.0.0:22", "[::]:22"))),
                                  "proxy_protocol": False}]
    if kind == "mtg_direct":
        binds = ("[::]:443", "0.0.0.0:443") + ((v4 + ":443",) if v4 and not v6 else ())
        doc["mtg"]["bind"] = draw(st.sampled_from(binds))
        doc["web"]["http_bind"] = public_http
        return doc
    doc["mtg"]["bind"] = join(loop, mtg_port)
    send = ("v1" if rkind == "nginx_stream" else draw(st.sampled_from(("v1", "v2")))) if pp else "none"
    listen = ["0.0.0.0:443", "[::]:443"] if v6 or draw(st.booleans()) else ["0.0.0.0:443"]
    router = {
        "kind": rkind, "listen": listen, "terminates_tls": False,
        "timeouts": {"client": draw(st.sampled_from(LONG)), "server": draw(st.sampled_from(LONG)),
                     "tunnel": draw(st.sampled_from(LONG)), "connect": "5s"},
        "backends": {"mtg": {"address": join(loop, mtg_port), "send_proxy": send},
                     "web": {"address": join(loop, web_tls_port), "send_proxy": send}},
    }
    rversion = draw(st.sampled_from(ROUTER_VERSIONS[rkind]))
    if rversion:
        router["version"] = rversion
    if rkind != "sslh":
        router["maxconn"] = draw(st.integers(concurrency, 50000))
    if rkind != "sslh" and draw(st.booleans()):
        router["http"] = {"listen": [a.replace("443", "80") for a in listen],
                          "acme_passthrough_to": "127.0.0.1:%d" % web_http_port,
                          "redirect_https": draw(st.booleans())}
        doc["web"]["http_bind"] = ["127.0.0.1:%d" % web_http_port]
    else:
        router["http"] = None
        doc["web"]["http_bind"] = public_http
    # a suffix route only where the router can do one (model.ROUTER_CAPABILITIES)
    suffix_magic = rkind in (None, "haproxy", "nginx_stream") and "sni_suffix" in \
        t.ROUTER_CAPABILITIES.get(rkind or "haproxy")["matches"] and draw(st.booleans())
    magic = ({"match": "sni_suffix", "value": domain, "backend": "mtg"} if suffix_magic
             else {"match": "sni_exact", "value": domain, "backend": "mtg"})
    routes = [magic]
    if not suffix_magic and draw(st.booleans()):
        routes.append({"match": "sni_exact", "value": "www." + domain, "backend": "web"})
    if want_ssh:
        router["backends"]["ssh"] = {"address": "127.0.0.1:22", "send_proxy": "none"}
        routes.append({"match": "ssh", "backend": "ssh"})
    routes = draw(st.permutations(routes))
    default = {"match": "default", "backend": "web"}
    position = len(routes) if rkind == "sslh" else draw(st.integers(0, len(routes)))
    router["routes"] = routes[:position] + [default] + routes[position:]
    doc["router"] = router
    return doc


def proxy_hops(doc):
    """(path, expected codes) of every PROXY flag on a hop of this topology."""
    if doc["kind"] == "mtg_direct":
        return [("mtg.proxy_protocol_listener", {"TGP104"}), ("mtg.fronting.proxy_protocol", {"TGP103"}),
                ("web.proxy_protocol", {"TGP103"})]
    hops = [("mtg.proxy_protocol_listener", {"TGP101"}), ("router.backends.mtg.send_proxy", {"TGP101"}),
            ("router.backends.web.send_proxy", {"TGP102"}), ("web.proxy_protocol", {"TGP102", "TGP103"}),
            ("mtg.fronting.proxy_protocol", {"TGP103"})]
    if "ssh" in doc["router"]["backends"]:
        hops += [("router.backends.ssh.send_proxy", {"TGP109"}), ("other_services[0].proxy_protocol", {"TGP109"})]
    return hops


def flip(doc, path):
    node = doc
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    key = parts[-1]
    value = node[key]
    if isinstance(value, bool):
        node[key] = not value
    else:
        node[key] = "none" if value != "none" else ("v1" if doc["router"]["kind"] == "nginx_stream" else "v2")
    return doc


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(topologies())
def test_random_valid_topologies_pass(doc):
    findings = v.validate(doc)
    assert [str(f) for f in findings] == []


@SETTINGS
@given(st.data())
def test_one_flipped_proxy_flag_is_always_caught(data):
    doc = data.draw(topologies())
    path, expected = data.draw(st.sampled_from(proxy_hops(doc)))
    findings = v.validate(flip(copy.deepcopy(doc), path))
    found = codes(findings)
    assert expected <= found, (path, [str(f) for f in findings])
    assert v.errors(findings)


def test_unset_mtg_values_take_their_defaults():
    """Playbooks pass None for variables the user did not set."""
    doc = {"kind": "mtg_direct", "domain": "proxy.example.com",
           "mtg": {"version": None, "bind": None, "stats_bind": None, "concurrency": None,
                   "fronting": {"host": None, "port": None, "proxy_protocol": None}}}
    assert v.validate(doc) == []
    assert v.normalise(doc)["mtg"]["stats_bind"] == "127.0.0.1:3129"


def test_tcp_tw_reuse_is_derived_when_a_router_backend_is_off_loopback():
    """The capacity was derived before the router's backends existed, so TIME_WAIT reuse for a backend off
    loopback was never derived through site.yml."""
    loopback = v.normalise(mut(HAPROXY, {"capacity": {"connections": 2000}, "mtg.concurrency": DELETE}))
    assert "net.ipv4.tcp_tw_reuse" not in loopback["tuning"]["sysctl"]
    remote = mut(HAPROXY, {"capacity": {"connections": 2000}, "mtg.concurrency": DELETE,
                           "router.backends": {"mtg": {"address": "127.0.0.1:3128"},
                                               "web": {"address": "10.20.0.5:8443", "send_proxy": "v2"}}})
    tuned = v.normalise(remote)["tuning"]
    assert tuned["sysctl"]["net.ipv4.tcp_tw_reuse"] == 1 and tuned["policies"]["net.ipv4.tcp_tw_reuse"] == "exact"


@pytest.mark.parametrize("rkind", sorted(t.ROUTER_CAPABILITIES))
def test_every_route_kind_a_router_cannot_do_is_rejected_naming_it(rkind):
    base = {"haproxy": HAPROXY, "nginx_stream": NGINX, "sslh": SSLH}[rkind]
    cannot = [match for match in v.ROUTE_MATCHES if match not in t.ROUTER_CAPABILITIES[rkind]["matches"]]
    for match in cannot:
        route = {"match": match, "backend": "web"}
        if match != "ssh":
            route["value"] = "x.example.org"
        findings = [f for f in v.validate(mut(base, {"router.routes": [route] + ROUTES})) if f.code == "TGP512"]
        assert len(findings) == 1 and ("which %s cannot do" % rkind) in str(findings[0]), findings
    assert (rkind == "haproxy") == (not cannot)


# -- blue/green mtg: two slots, one live -------------------------------------------------------------------

def test_blue_green_is_on_behind_routers_that_reload_hitlessly_and_off_elsewhere():
    for base, expected in ((HAPROXY, True), (NGINX, True), (SSLH, False), (DIRECT, False)):
        mtg = v.normalise(base)["mtg"]
        assert mtg["blue_green"] is expected, base["router"]
        assert (mtg["slots"] is not None) is expected
        assert mtg["slot"] == "blue"


def test_the_live_slot_decides_where_the_router_and_the_doctor_reach_mtg():
    blue = v.normalise(HAPROXY)
    assert blue["mtg"]["slots"] == {"blue": {"bind": "127.0.0.1:3128", "stats_bind": "127.0.0.1:3129"},
                                    "green": {"bind": "127.0.0.1:3132", "stats_bind": "127.0.0.1:3133"}}
    assert blue["router"]["backends"]["mtg"]["address"] == "127.0.0.1:3128"
    assert not v.validate(mut(HAPROXY, {"mtg.slot": "green"}))
    green = v.normalise(mut(HAPROXY, {"mtg.slot": "green"}))
    mtg = green["mtg"]
    assert (mtg["bind"], mtg["stats_bind"]) == ("127.0.0.1:3132", "127.0.0.1:3133")
    # the inventory's backend names the first slot's port; it follows the live slot
    assert green["router"]["backends"]["mtg"]["address"] == "127.0.0.1:3132"
    assert green["mtg"]["slots"] == blue["mtg"]["slots"]


def test_a_slot_that_is_not_blue_or_green_is_named():
    findings = v.validate(mut(HAPROXY, {"mtg.slot": "red"}))
    assert [(f.code, f.vars) for f in findings] == [("TGP004", ["mtg.slot"])], findings


def test_the_second_slot_sits_on_the_first_ones_host():
    result = v.normalise(mut(NGINX, {"mtg.bind": "[::1]:3128", "router.backends.mtg.address": "[::1]:3128"}))
    assert result["mtg"]["slots"]["green"]["bind"] == "[::1]:3132"


# --------------------------------------------------------------------------
# further mtg instances: the model's view
# --------------------------------------------------------------------------
def test_instances_get_their_ports_routes_backends_and_certificate_names():
    doc = v.normalise(INSTANCES)
    spring, summer = doc["mtg"]["instances"]
    assert (spring["bind"], spring["stats_bind"], summer["bind"], summer["stats_bind"]) == (
        "127.0.0.1:3140", "127.0.0.1:3141", "127.0.0.1:3142", "127.0.0.1:3143")
    assert [(r["value"], r["backend"]) for r in doc["router"]["routes"]] == [
        (OTHER, "mtg_spring"), (THIRD, "mtg_summer"), (DOMAIN, "mtg"), (None, "web")]
    assert doc["router"]["backends"]["mtg_summer"]["address"] == "127.0.0.1:3142"
    assert doc["web"]["cert_domains"] == [DOMAIN, OTHER, THIRD]
    assert not spring["retired"] and spring["retire_at"] is None


def test_each_instance_has_two_slots_behind_a_hitless_router_and_the_router_reaches_the_live_one():
    """As the first instance: with blue/green each further one has a second slot on the next free loopback ports
    (after every instance's first ones, which stay where they were), units mtg-<name> and mtg-<name>-green, and the
    host's record (mtg.instance_slots) names the live one, which the router's backend reaches."""
    doc = v.normalise(INSTANCES)
    spring, summer = doc["mtg"]["instances"]
    assert spring["slots"] == {"blue": {"bind": "127.0.0.1:3140", "stats_bind": "127.0.0.1:3141"},
                               "green": {"bind": "127.0.0.1:3144", "stats_bind": "127.0.0.1:3145"}}
    assert summer["slots"]["green"] == {"bind": "127.0.0.1:3146", "stats_bind": "127.0.0.1:3147"}
    assert spring["units"] == {"blue": "mtg-spring", "green": "mtg-spring-green"}
    assert (spring["slot"], spring["live_unit"], spring["unit"]) == ("blue", "mtg-spring", "mtg-spring")
    green = v.normalise(mut(INSTANCES, {"mtg.instance_slots": {"spring": "green"}}))
    spring = green["mtg"]["instances"][0]
    assert (spring["slot"], spring["bind"], spring["stats_bind"], spring["live_unit"]) == (
        "green", "127.0.0.1:3144", "127.0.0.1:3145", "mtg-spring-green")
    # its secret, timer and files keep the instance's name
    assert spring["unit"] == "mtg-spring"
    assert green["router"]["backends"]["mtg_spring"]["address"] == "127.0.0.1:3144"
    assert green["router"]["backends"]["mtg_summer"]["address"] == "127.0.0.1:3142"
    # a backend the inventory gives for the instance (its first slot's port) follows the live slot too
    given = v.normalise(mut(INSTANCES, {
        "mtg.instances": [{"name": "spring", "domain": OTHER}], "mtg.instance_slots": {"spring": "green"},
        "router.routes": [MAGIC, SPRING, DEFAULT],
        "router.backends": {"mtg": HAPROXY["router"]["backends"]["mtg"], "web": HAPROXY["router"]["backends"]["web"],
                            "mtg_spring": SPRING_BACKEND}}))
    # (one instance: its second slot right after its first)
    assert given["router"]["backends"]["mtg_spring"]["address"] == "127.0.0.1:3142"
    # without blue/green (sslh): one slot, a change restarts it
    behind_sslh = mut(INSTANCES, {"router.kind": "sslh", "router.http": None, "web.http_bind": ["0.0.0.0:80", "[::]:80"]})
    sslh = v.normalise(behind_sslh)["mtg"]["instances"][0]
    assert (sslh["slots"], sslh["units"], sslh["live_unit"]) == (None, {"blue": "mtg-spring"}, "mtg-spring")


def test_a_retired_instance_loses_its_route_and_backend_but_keeps_its_certificate():
    doc = v.normalise(mut(INSTANCES, {"mtg.instances[0].retire_at": "2027-01-15T08:00:00Z"}))
    spring = doc["mtg"]["instances"][0]
    assert spring["retired"] and spring["retire_at"] == NOW
    assert "mtg_spring" not in doc["router"]["backends"]
    assert OTHER not in [r["value"] for r in doc["router"]["routes"]] and OTHER in doc["web"]["cert_domains"]
    # a second before: still serving; without a clock (no "now"): never retired
    assert not v.normalise(mut(INSTANCES, {"mtg.instances[0].retire_at": NOW + 1}))["mtg"]["instances"][0]["retired"]
    assert not v.normalise(mut(INSTANCES, {"mtg.instances[0].retire_at": "2027-01-15", "now": DELETE})
                           )["mtg"]["instances"][0]["retired"]


@pytest.mark.parametrize("kind,retire_at,timer", [
    ("haproxy", NOW + 60, True), ("nginx_stream", NOW + 60, True), ("sslh", NOW + 60, False),
    ("haproxy", NOW, False), ("haproxy", None, False)])
def test_the_host_retires_an_instance_itself_where_the_router_sends_its_domain_to_the_website(kind, retire_at, timer):
    """HAProxy (health checks) and nginx stream (a backup server) send a stopped instance's domain to the website:
    there the host stops it at retire_at itself (a systemd timer); sslh would give it an error, so a run does it.
    An instance already retired, or without retire_at, has no timer."""
    doc = mut(INSTANCES, {"router.kind": kind, "mtg.instances[0].retire_at": retire_at})
    if kind == "sslh":
        doc = mut(doc, {"router.http": None, "web.http_bind": ["0.0.0.0:80", "[::]:80"]})
    assert v.normalise(doc)["mtg"]["instances"][0]["retire_timer"] is timer


@pytest.mark.parametrize("text,seconds", [
    ("2027-01-15", 1800000000 - 8 * 3600), ("2027-01-15T08:00:00Z", 1800000000), ("2027-01-15T08:00Z", 1800000000),
    ("2027-01-15 09:00:00+01:00", 1800000000), ("2027-01-15T08:00:00", 1800000000), (1800000000, 1800000000),
    ("1800000000", 1800000000), ("2027-02-30", None), ("next friday", None), (True, None), (-1, None),
    ("2027-01-15T08:00:00Z\n", 1800000000), ("2027-01-15T25:00:00Z", None), (None, None)])
def test_epoch_seconds(text, seconds):
    from ansible_collections.tgproxy.stealth.plugins.module_utils import values
    assert values.epoch_seconds(text) == seconds
