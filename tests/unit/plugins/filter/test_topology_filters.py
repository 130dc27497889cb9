# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tgp_validate / tgp_topology_errors filters."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.tgproxy.stealth.plugins.filter import topology as filters

DOMAIN = "proxy.example.com"
GOOD = {"kind": "sni_router", "domain": DOMAIN, "router": {"kind": "nginx_stream"}}
HERE = os.path.dirname(filters.__file__)


def test_filter_map_is_complete():
    assert set(filters.FilterModule().filters()) == {"tgp_validate", "tgp_topology_errors"}


@pytest.mark.parametrize("name", ["tgp_validate", "tgp_topology_errors"])
def test_every_filter_has_a_doc_file(name):
    with open(os.path.join(HERE, name + ".yml")) as handle:
        doc = yaml.safe_load(handle)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["options"]["_input"]["type"] == "dict"
    assert doc["RETURN"]["_value"]["type"] == "list"


def test_good_topology_has_no_findings():
    assert filters.tgp_validate(GOOD) == []
    assert filters.tgp_topology_errors(GOOD) == []


def test_validate_returns_errors_and_warnings_as_dicts():
    topology = dict(GOOD, router={"kind": "nginx_stream", "maxconn": 10, "terminates_tls": True})
    findings = filters.tgp_validate(topology)
    assert [(f["code"], f["severity"]) for f in findings] == [("TGP201", "error"), ("TGP204", "warning")]
    assert set(findings[0]) == {"code", "severity", "vars", "msg", "breaks", "fix"}
    assert findings[0]["vars"] == ["router.terminates_tls"]


def test_topology_errors_keeps_only_errors():
    topology = dict(GOOD, router={"kind": "nginx_stream", "maxconn": 10, "terminates_tls": True})
    assert [f["code"] for f in filters.tgp_topology_errors(topology)] == ["TGP201"]
    only_warning = dict(GOOD, router={"kind": "nginx_stream", "maxconn": 10})
    assert filters.tgp_topology_errors(only_warning) == []
    assert [f["code"] for f in filters.tgp_validate(only_warning)] == ["TGP204"]


def test_not_a_mapping_is_a_finding_not_a_crash():
    assert [f["code"] for f in filters.tgp_topology_errors("sni_router")] == ["TGP004"]
