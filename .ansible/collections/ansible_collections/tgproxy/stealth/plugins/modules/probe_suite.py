#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: probe_suite
short_description: Probe the proxy like a censor and compare every answer with the web server's own
version_added: "0.1.0"
description:
  - Sends the same stimuli (TLS handshakes with the proxy's SNI, a random SNI, no SNI, another site's SNI, a
    TLS 1.2-only client, ALPN offers; malformed ClientHellos; plain HTTP; an SSH banner; an empty connection;
    optionally the replay of a FakeTLS ClientHello mtg already accepted) to the public endpoint and to the web
    backend alone (with the PROXY header it expects), and reports each pair as identical or different with
    the evidence (TLS alert, ServerHello version and cipher, negotiated version/cipher/ALPN, leaf
    certificate, FIN/RST/open, timing class).
  - Changes nothing. Run it on the proxy host (both endpoints are reachable there) or anywhere that reaches
    both.
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
  domain:
    description: The proxy's domain (the SNI of the proxy link and the site).
    type: str
    required: true
  public_host:
    description: The public endpoint.
    type: str
    default: 127.0.0.1
  public_port:
    description: Its port.
    type: int
    default: 443
  backend_host:
    description: The web backend's TLS listener.
    type: str
    default: 127.0.0.1
  backend_port:
    description: Its port.
    type: int
    default: 8443
  backend_proxy_protocol:
    description: The PROXY header the web backend expects (what the router or mtg sends it).
    type: str
    choices: [none, v1, v2]
    default: none
  secret:
    description: The mtg secret (hex or base64url); enables the replay probe. Never logged.
    type: str
  probes:
    description: Run only these probes (default all).
    type: list
    elements: str
    default: []
  wait:
    description:
      - Seconds a raw probe waits for the server to answer or close. Keep it clear of the daemons' own timeouts
        (HAProxy's inspect delay, 5 s) so that a close racing the deadline does not decide the result.
    type: float
    default: 6.5
  known_differences:
    description:
      - Probe name to the reason a difference is expected (any difference of that probe), or to
        C({fields, reason}) (only differences in those observation fields, for example C(close)).
      - Such a difference is reported, not failed.
    type: dict
    default: {}
  fail_on_difference:
    description: Fail when a probe differs and is not a known difference.
    type: bool
    default: true
author:
  - tgproxy.stealth contributors (@tgproxy)
"""

EXAMPLES = r"""
- name: Active-probing suite
  tgproxy.stealth.probe_suite:
    domain: proxy.example.com
    backend_proxy_protocol: v2
    secret: "{{ mtg_secret_value }}"
"""

RETURN = r"""
results:
  description: One entry per probe with C(probe), C(description), C(public), C(backend) (the observations),
    C(identical), C(differs_in) and C(known_difference).
  returned: always
  type: list
  elements: dict
table:
  description: One line per probe.
  returned: always
  type: list
  elements: str
different:
  description: Probes that differ and are not known differences.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import probes
from ansible_collections.tgproxy.stealth.plugins.module_utils.topology import Secret, TopologyError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            domain=dict(type="str", required=True),
            public_host=dict(type="str", default="127.0.0.1"),
            public_port=dict(type="int", default=443),
            backend_host=dict(type="str", default="127.0.0.1"),
            backend_port=dict(type="int", default=8443),
            backend_proxy_protocol=dict(type="str", choices=["none", "v1", "v2"], default="none"),
            secret=dict(type="str", no_log=True),
            probes=dict(type="list", elements="str", default=[]),
            wait=dict(type="float", default=6.5),
            known_differences=dict(type="dict", default={}),
            fail_on_difference=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    known_names = [name for name, dummy, dummy2, dummy3 in probes.suite(p["domain"], b"")]
    unknown = sorted(set(p["probes"]) - set(known_names))
    if unknown:
        module.fail_json(msg="probes: unknown %s (known: %s)" % (", ".join(unknown), ", ".join(known_names)))
    public = {"host": p["public_host"], "port": p["public_port"], "proxy_protocol": "none"}
    backend = {"host": p["backend_host"], "port": p["backend_port"], "proxy_protocol": p["backend_proxy_protocol"]}
    replay = None
    if p["secret"]:
        try:
            secret = Secret.parse(p["secret"])
        except (TopologyError, ValueError) as exc:
            module.fail_json(msg="secret is malformed: %s" % exc)
        try:
            replay, accepted = probes.accepted_faketls_hello(public, secret.key, p["domain"])
        except OSError as exc:
            module.fail_json(msg="cannot reach %s:%d for the FakeTLS session: %s" % (p["public_host"],
                                                                                     p["public_port"], exc))
        if not accepted:
            module.fail_json(msg="mtg did not accept a FakeTLS ClientHello with this secret on %s:%d, so there is "
                                 "nothing to replay: check the secret and that mtg serves this endpoint"
                             % (p["public_host"], p["public_port"]))
    results = probes.run_suite(public, backend, p["domain"], replay_hello=replay, only=p["probes"] or None,
                               wait=p["wait"], known=p["known_differences"])
    table = [probes.format_row(result) for result in results]
    different = [r["probe"] for r in results if not r["identical"] and not r["known_difference"]]
    result = dict(changed=False, results=results, table=table, different=different)
    if different and p["fail_on_difference"]:
        module.fail_json(msg="%d of %d probes tell the proxy from the web server: %s"
                         % (len(different), len(results), ", ".join(different)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
