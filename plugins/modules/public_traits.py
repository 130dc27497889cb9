#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: public_traits
short_description: Read what a visitor of a proxy host's public port sees, for the fleet comparison
version_added: 1.0.0
description:
  - Fetches the site's usual paths (C(/), C(/favicon.ico), C(/robots.txt), C(/sitemap.xml), a missing page and
    the stylesheet C(/) links) over TLS with the domain's SNI, and returns a short hash of each body, the
    certificate's hash, the C(Server) header and the set of header names (C(plugins/module_utils/fleet.py)).
  - The doctor compares these across the hosts of a run and fails when two share a trait that identifies them
    (the same page body, favicon, stylesheet or certificate); the traits ordinary sites share are not compared.
  - Nothing is changed; only the Python standard library is used on the host.
author:
  - tgproxy.stealth contributors (@tgproxy)
extends_documentation_fragment:
  - tgproxy.stealth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  host:
    description: Address of the public endpoint (on the host itself, 127.0.0.1).
    type: str
    default: 127.0.0.1
  port:
    description: The public TLS port.
    type: int
    default: 443
  domain:
    description: The site's domain (the SNI and the Host header).
    type: str
    required: true
  timeout:
    description: Seconds per request.
    type: float
    default: 5.0
"""

EXAMPLES = r"""
- name: Read what a visitor of :443 sees
  tgproxy.stealth.public_traits:
    domain: proxy.example.com
  register: traits
"""

RETURN = r"""
traits:
  description: Trait name to value (short hashes of bodies and the certificate; the Server header; header names).
  returned: success
  type: dict
  sample: {"body:/": "3f9a1c0b7e6d5a42", "certificate": "0b7e6d5a423f9a1c", "server": "Caddy"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import fleet


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=443),
            domain=dict(type="str", required=True),
            timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        traits = fleet.collect(params["host"], params["port"], params["domain"], params["timeout"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="could not read %s:%d as a visitor: %s" % (params["host"], params["port"], exc))
    module.exit_json(changed=False, traits=traits)


if __name__ == "__main__":
    main()
