# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the topology model for mtg (docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.tgproxy.stealth.plugins.module_utils import topology


def mtg_secret_info(secret):
    """Parse a secret: kind, key, encoded domain, both encodings."""
    try:
        return topology.Secret.parse(secret).describe()
    except ValueError as exc:
        raise AnsibleFilterError("mtg_secret_info: %s" % exc)


def mtg_proxy_links(secret, server, port=topology.PUBLIC_TLS_PORT):
    """tg:// and https://t.me/proxy links for a secret, a server and the public port."""
    try:
        return topology.proxy_links(secret, server, port)
    except ValueError as exc:
        raise AnsibleFilterError("mtg_proxy_links: %s" % exc)


def mtg_preflight(spec):
    """All problems with the mtg role inputs as a list of {var, msg, fix}."""
    return [error.as_dict() for error in topology.mtg_preflight(spec)]


def mtg_facts(spec):
    """Normalised topology facts (ports, fronting key, capabilities)."""
    try:
        return topology.mtg_topology(spec)
    except topology.TopologyError as exc:
        raise AnsibleFilterError(str(exc))


def mtg_config_doc(spec):
    """The mtg TOML document (without the secret) as a dict."""
    try:
        return topology.mtg_config(spec)
    except topology.TopologyError as exc:
        raise AnsibleFilterError(str(exc))


def mtg_release(version, machine, base_url):
    """Archive name, URL and checksum-file URL of an upstream mtg release."""
    try:
        return topology.mtg_release(version, machine, base_url)
    except (ValueError, topology.TopologyError) as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "mtg_secret_info": mtg_secret_info,
            "mtg_proxy_links": mtg_proxy_links,
            "mtg_preflight": mtg_preflight,
            "mtg_facts": mtg_facts,
            "mtg_config_doc": mtg_config_doc,
            "mtg_release": mtg_release,
        }
