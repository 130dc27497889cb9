# -*- coding: utf-8 -*-
"""The platform table: lookups by Ansible's facts, and the README generated from it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.tgproxy.stealth.plugins.filter.topology import tgp_platform
from ansible_collections.tgproxy.stealth.plugins.module_utils import platforms

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


@pytest.mark.parametrize("distribution,version,expected", [
    ("Debian", "12", "bookworm"), ("Debian", "12.8", "bookworm"), ("Debian", "13.1", "trixie"),
    ("Ubuntu", "22.04", "jammy"), ("Ubuntu", "24.04", "noble"),
    ("Debian", "11.11", None), ("Debian", "120", None), ("Ubuntu", "23.10", None), ("Fedora", "40", None),
    ("Debian", "", None), ("Debian", None, None),
])
def test_find_by_ansible_facts(distribution, version, expected):
    found = platforms.find(distribution, version)
    assert (found.codename if found else None) == expected


def test_tested_platforms_are_exactly_what_role_metadata_claims():
    tested = {(p.distribution, p.codename) for p in platforms.PLATFORMS if p.tested}
    for meta in sorted(os.listdir(os.path.join(ROOT, "roles"))):
        with open(os.path.join(ROOT, "roles", meta, "meta", "main.yml")) as handle:
            claims = yaml.safe_load(handle)["galaxy_info"]["platforms"]
        assert {(c["name"], v) for c in claims for v in c["versions"]} == tested, meta


def test_readme_table_is_generated_from_the_model():
    with open(os.path.join(ROOT, "README.md")) as handle:
        assert platforms.readme_table() in handle.read()


def test_filter_gives_the_roles_the_platform_values():
    facts = {"distribution": "Debian", "distribution_version": "13.2"}
    assert tgp_platform(facts) == {"known": True, "tested": True, "name": "Debian 13 (trixie)", "haproxy": "3.0",
                                   "nginx": "1.26", "acme_sh_package": True}
    assert tgp_platform({"distribution": "Ubuntu", "distribution_version": "22.04"})["acme_sh_package"] is False
    unknown = tgp_platform({"distribution": "Arch", "distribution_version": "rolling"})
    assert unknown["known"] is False and unknown["acme_sh_package"] is False
