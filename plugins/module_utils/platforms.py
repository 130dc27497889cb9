# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platforms a host may run, what each ships, and which ones the tests cover.

Part of the collection's topology model: the validator checks a host's
platform with it (TGP801/TGP802), the ``tgp_platform`` filter gives the roles
its values (e.g. whether the distribution ships acme.sh), and the README's
platform table is generated from it (tests/unit keeps them equal).

Ubuntu is described as expected to work but untested: the test bed has no
Ubuntu archive. Its entries hold the versions its archive is known to ship,
so that a difference the roles care about has one place to go.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections

Platform = collections.namedtuple("Platform", [
    "distribution", "version", "codename",
    "tested",           # what covers it, or None: expected to work, untested
    "haproxy", "nginx",  # the versions its archive ships (nginx with libnginx-mod-stream)
    "acme_sh_package",  # the archive has an acme.sh package
])

PLATFORMS = (
    Platform("Debian", "12", "bookworm", "every Molecule scenario has a Debian 12 host", "2.6", "1.22", False),
    Platform("Debian", "13", "trixie", "every scenario but `migrate` has a Debian 13 host", "3.0", "1.26", True),
    Platform("Ubuntu", "22.04", "jammy", None, "2.4", "1.18", False),
    Platform("Ubuntu", "24.04", "noble", None, "2.8", "1.24", False),
)


def find(distribution, version):
    """The platform entry for Ansible's distribution facts (Debian by major version), or None."""
    version = str(version or "")
    for platform in PLATFORMS:
        if platform.distribution != distribution:
            continue
        if version == platform.version or version.startswith(platform.version + "."):
            return platform
    return None


def supported_names():
    return ", ".join("%s %s" % (p.distribution, p.version) for p in PLATFORMS)


def readme_table():
    """The README's platform table (tests/unit/plugins/module_utils/test_platforms.py keeps it current)."""
    lines = ["| platform | status | HAProxy | nginx | acme.sh package |", "|---|---|---|---|---|"]
    for p in PLATFORMS:
        status = ("**tested**: " + p.tested) if p.tested else (
            "**expected to work, not tested**: the test bed has no Ubuntu archive")
        lines.append("| %s %s (%s) | %s | %s | %s | %s |" % (
            p.distribution, p.version, p.codename, status, p.haproxy, p.nginx, "yes" if p.acme_sh_package else "no"))
    return "\n".join(lines) + "\n"
