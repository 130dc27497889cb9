# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the topology model for the web backend (docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.tgproxy.stealth.plugins.module_utils import topology


def caddy_release(version, machine, base_url):
    """Archive name, URL and checksum-file URL of an upstream Caddy release."""
    try:
        return topology.caddy_release(version, machine, base_url)
    except (ValueError, topology.TopologyError) as exc:
        raise AnsibleFilterError(str(exc))


def web_preflight(spec, prefix="caddy"):
    """All problems with a web backend's inputs as a list of {var, msg, fix}."""
    return [error.as_dict() for error in topology.web_preflight(spec, prefix)]


def acme_directory(ca):
    """ACME directory URL for a CA name or URL."""
    return topology.acme_directory(ca)


def acme_sh_release(version, base_url, checksum=""):
    """URL, checksum and top directory of an acme.sh tag archive."""
    try:
        return topology.acme_sh_release(version, base_url, checksum)
    except (ValueError, topology.TopologyError) as exc:
        raise AnsibleFilterError(str(exc))


def acme_sh_preflight(spec, prefix="acme_sh"):
    """All problems with the acme.sh role's inputs as a list of {var, msg, fix}."""
    return [error.as_dict() for error in topology.acme_sh_preflight(spec, prefix)]


def acme_sh_server(ca):
    """acme.sh --server value for a CA name or directory URL."""
    return topology.acme_sh_server(ca)


def acme_sh_conf(text):
    """An acme.sh domain conf as a dict (base64-wrapped values decoded)."""
    return topology.acme_sh_conf(text)


def acme_sh_domain_dir(domain, keylength):
    """The directory below acme.sh's home that holds a domain's certificate."""
    return topology.acme_sh_domain_dir(domain, keylength)


class FilterModule(object):
    def filters(self):
        return {
            "caddy_release": caddy_release,
            "web_preflight": web_preflight,
            "acme_directory": acme_directory,
            "acme_sh_release": acme_sh_release,
            "acme_sh_preflight": acme_sh_preflight,
            "acme_sh_server": acme_sh_server,
            "acme_sh_conf": acme_sh_conf,
            "acme_sh_domain_dir": acme_sh_domain_dir,
        }
