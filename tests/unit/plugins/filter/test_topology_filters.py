# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tgp_validate / tgp_topology_errors filters."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
from ansible.errors import AnsibleFilterError
import yaml

from ansible_collections.tgproxy.stealth.plugins.filter import topology as filters

DOMAIN = "proxy.example.com"
GOOD = {"kind": "sni_router", "domain": DOMAIN, "router": {"kind": "nginx_stream"}}
HERE = os.path.dirname(filters.__file__)


def test_filter_map_is_complete():
    names = {"tgp_validate", "tgp_topology_errors", "tgp_normalise", "tgp_hostport", "tgp_seconds", "tgp_tuning",
             "tgp_nginx_workers", "tgp_nofile", "tgp_stage_binds", "tgp_platform", "tgp_interface_errors",
             "tgp_shared_site", "tgp_shared_traits", "tgp_value_errors", "tgp_role_defaults"}
    assert set(filters.FilterModule().filters()) == names


@pytest.mark.parametrize("name,input_type,return_type", [
    ("tgp_validate", "dict", "list"), ("tgp_topology_errors", "dict", "list"),
    ("tgp_normalise", "dict", "dict"), ("tgp_hostport", "str", "dict"), ("tgp_seconds", "str", "int"),
    ("tgp_tuning", "dict", "dict"), ("tgp_nginx_workers", "int", "dict"),
    ("tgp_nofile", "int", "int"), ("tgp_stage_binds", "list", "list"), ("tgp_value_errors", "list", "list"),
    ("tgp_role_defaults", "raw", "dict"),
])
def test_every_filter_has_a_doc_file(name, input_type, return_type):
    with open(os.path.join(HERE, name + ".yml")) as handle:
        doc = yaml.safe_load(handle)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["options"]["_input"]["type"] == input_type
    assert doc["RETURN"]["_value"]["type"] == return_type


def test_good_topology_has_no_findings():
    assert filters.tgp_validate(GOOD) == []
    assert filters.tgp_topology_errors(GOOD) == []


def test_validate_returns_errors_and_warnings_as_dicts():
    topology = dict(GOOD, router={"kind": "nginx_stream", "maxconn": 10, "terminates_tls": True})
    findings = filters.tgp_validate(topology)
    assert [(f["code"], f["severity"]) for f in findings] == [("TGP201", "error"), ("TGP204", "warning")]
    assert set(findings[0]) == {"code", "severity", "vars", "var", "msg", "breaks", "fix"}
    assert findings[0]["vars"] == ["router.terminates_tls"]


def test_topology_errors_keeps_only_errors():
    topology = dict(GOOD, router={"kind": "nginx_stream", "maxconn": 10, "terminates_tls": True})
    assert [f["code"] for f in filters.tgp_topology_errors(topology)] == ["TGP201"]
    only_warning = dict(GOOD, router={"kind": "nginx_stream", "maxconn": 10})
    assert filters.tgp_topology_errors(only_warning) == []
    assert [f["code"] for f in filters.tgp_validate(only_warning)] == ["TGP204"]


def test_not_a_mapping_is_a_finding_not_a_crash():
    assert [f["code"] for f in filters.tgp_topology_errors("sni_router")] == ["TGP004"]


def test_normalise_fills_the_router_from_the_model():
    doc = filters.tgp_normalise({"kind": "sni_router", "domain": "proxy.example.com", "proxy_protocol": True,
                                 "router": {"kind": "haproxy"}, "web": {"kind": "caddy"}})
    router = doc["router"]
    assert router["listen"] == ["0.0.0.0:443", "[::]:443"] and router["maxconn"] == 20000
    assert router["backends"]["mtg"] == {"address": "127.0.0.1:3128", "send_proxy": "v2"}
    assert router["routes"][0] == {"match": "sni_exact", "value": "proxy.example.com", "backend": "mtg"}
    assert router["http"]["acme_passthrough_to"] == doc["web"]["http_bind"][0] == "127.0.0.1:8080"
    assert doc["mtg"]["proxy_protocol_listener"] is True


@pytest.mark.parametrize("address,host,port", [("127.0.0.1:8443", "127.0.0.1", 8443), ("[::]:80", "::", 80),
                                               ("proxy.example.com:443", "proxy.example.com", 443)])
def test_hostport(address, host, port):
    assert filters.tgp_hostport(address) == {"host": host, "port": port}


@pytest.mark.parametrize("text,seconds", [("1h", 3600), ("90m", 5400), ("3600s", 3600), ("1h30m", 5400), ("5", 5), (30, 30),
                                          ("500ms", 0.5)])
def test_seconds(text, seconds):
    assert filters.tgp_seconds(text) == seconds


def test_seconds_rejects_garbage():
    with pytest.raises(AnsibleFilterError):
        filters.tgp_seconds("soon")


def test_tgp_tuning_names_the_variable():
    assert filters.tgp_tuning({"connections": 100}, router_kind="haproxy")["router_maxconn"] == 1124
    with pytest.raises(AnsibleFilterError, match=r"\[tgproxy_capacity.memory_mb\] 100 MiB cannot hold"):
        filters.tgp_tuning({"connections": 100000, "memory_mb": 100})


def test_tgp_nginx_workers():
    assert filters.tgp_nginx_workers(20000, 2) == {"worker_processes": 2, "worker_connections": 20512,
                                                   "worker_rlimit_nofile": 21536}
    with pytest.raises(AnsibleFilterError):
        filters.tgp_nginx_workers("many", 2)


def test_tgp_nofile_and_its_inverse():
    assert filters.tgp_nofile(9000) == 19024
    assert filters.tgp_nofile(20000, inverse=True) == 9488
    assert filters.tgp_nofile(filters.tgp_nofile(7000), inverse=True) == 7000
    with pytest.raises(AnsibleFilterError):
        filters.tgp_nofile("many")


def test_tgp_stage_binds():
    binds = ["0.0.0.0:443", "[::]:443"]
    assert filters.tgp_stage_binds(binds, {443: [10443]}) == ["0.0.0.0:10443", "[::]:10443"]
    assert filters.tgp_stage_binds(binds, {"443": [443, 10443]}) == [
        "0.0.0.0:443", "0.0.0.0:10443", "[::]:443", "[::]:10443"]
    assert filters.tgp_stage_binds(binds) == binds
    with pytest.raises(AnsibleFilterError, match="ports maps a port"):
        filters.tgp_stage_binds(binds, {443: ["spare"]})
