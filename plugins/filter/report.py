# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report (docs in tgp_fleet_report.yml beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.tgproxy.stealth.plugins.module_utils import report


def tgp_fleet_report(hosts, fmt="html", redact=False, title="tgproxy fleet report"):
    """The fleet report as one self-contained HTML page (fmt html) or a Markdown summary (fmt markdown)."""
    builders = {"html": report.build_html, "markdown": report.build_markdown}
    if fmt not in builders:
        raise AnsibleFilterError("tgp_fleet_report: fmt must be html or markdown, not %r" % (fmt,))
    try:
        return builders[fmt](list(hosts), redact_secrets=bool(redact), title=title)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise AnsibleFilterError("tgp_fleet_report: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"tgp_fleet_report": tgp_fleet_report}
