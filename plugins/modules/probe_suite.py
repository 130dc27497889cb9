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
      - Such a difference is reported, not failed. These come on top of the collection's catalogue for O(front)
        (C(module_utils/reference.py), the README).
    type: dict
    default: {}
  front:
    description:
      - What answers on the public port (mtg itself, or the router's kind), for the catalogue of the differences that
        front shows and no setting removes.
    type: str
    choices: [mtg_direct, haproxy, nginx_stream, sslh]
  ssh_route:
    description: The router has a route with C(match ssh) (an SSH banner then reaches the SSH server, as intended).
    type: bool
    default: false
  fail_on_difference:
    description: Fail when a probe differs and is not a known difference.
    type: bool
    default: true
  public_http_port:
    description: The public plain-HTTP port (reference mode's :80 probes).
    type: int
    default: 80
  reference_domain:
    description:
      - Reference mode. The domain of an ordinary website of the same web server kind, deployed with no proxy and no
        router (for example another site the operator runs). The public ports are then also compared with it, every
        probe, HTTP-level probes on both ports (status, header names and values except the per-request ones,
        C(Location) shape, C(Alt-Svc)), session tickets and resumption, and the record types of the first flight.
      - Only the differences catalogued in the collection (C(module_utils/reference.py), the README's stealth section)
        are excused.
    type: str
  reference_host:
    description: Where the reference site is reached (default its domain).
    type: str
  reference_port:
    description: Its TLS port.
    type: int
    default: 443
  reference_http_port:
    description: Its plain-HTTP port.
    type: int
    default: 80
  flight_samples:
    description:
      - With O(secret), sample the FakeTLS first flight and the site's own first flight for the domain this many
        times each (interleaved) and compare their ApplicationData bytes (mtg's calibration,
        C(defense.doppelganger)). 0 skips it.
    type: int
    default: 20
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
flight:
  description: The FakeTLS and the site's first-flight ApplicationData bytes (C(count), C(median), C(min), C(max))
    and C(calibrated).
  returned: when O(secret) is set and O(flight_samples) is above 0
  type: dict
reference_results:
  description: Reference mode's results (the same shape as RV(results); C(public) is this host, C(backend) the
    reference site), including the first-flight measurement's rows.
  returned: always
  type: list
  elements: dict
reference_table:
  description: One line per reference-mode probe.
  returned: always
  type: list
  elements: str
reference_different:
  description: Reference-mode probes that differ and are not catalogued differences.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import probes, reference
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
            public_http_port=dict(type="int", default=80),
            reference_domain=dict(type="str"),
            reference_host=dict(type="str"),
            reference_port=dict(type="int", default=443),
            reference_http_port=dict(type="int", default=80),
            flight_samples=dict(type="int", default=20),
            front=dict(type="str", choices=list(reference.FRONTS)),
            ssh_route=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    known_names = [name for name, dummy, dummy2, dummy3 in probes.suite(p["domain"], b"")]
    unknown = sorted(set(p["probes"]) - set(known_names))
    if unknown:
        module.fail_json(msg="probes: unknown %s (known: %s)" % (", ".join(unknown), ", ".join(known_names)))
    known = reference.known_differences(p["front"], p["ssh_route"], p["known_differences"])
    public = {"host": p["public_host"], "port": p["public_port"], "proxy_protocol": "none"}
    backend = {"host": p["backend_host"], "port": p["backend_port"], "proxy_protocol": p["backend_proxy_protocol"]}
    replay, secret = None, None
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
                               wait=p["wait"], known=known)
    table = [probes.format_row(result) for result in results]
    different = [r["probe"] for r in results if not r["identical"] and not r["known_difference"]]
    result = dict(changed=False, results=results, table=table, different=different)
    result.update(_reference_mode(module, public, secret, known))
    failed = different + result["reference_different"]
    if failed and p["fail_on_difference"]:
        module.fail_json(msg="%d probes tell the proxy from %s: %s"
                         % (len(failed), "the web server or the reference site" if p["reference_domain"]
                            else "the web server", ", ".join(failed)), **result)
    module.exit_json(**result)


def _reference_mode(module, public, secret, known):
    """The first-flight measurement (with the secret) and the comparison with the reference site (when named)."""
    p = module.params
    out = dict(reference_results=[], reference_table=[], reference_different=[])
    if secret is not None and p["flight_samples"] > 0:
        try:
            out["flight"] = reference.faketls_flight(public, p["domain"], secret.key, p["flight_samples"])
        except OSError as exc:
            module.fail_json(msg="cannot sample the first flight on %s:%d: %s" % (public["host"], public["port"], exc))
        out["reference_results"] += reference.flight_results(out["flight"], known)
    if p["reference_domain"]:
        where = p["reference_host"] or p["reference_domain"]
        theirs = {"host": where, "port": p["reference_port"], "proxy_protocol": "none"}
        theirs_http = {"host": where, "port": p["reference_http_port"], "proxy_protocol": "none"}
        ours_http = {"host": public["host"], "port": p["public_http_port"], "proxy_protocol": "none"}
        out["reference_results"] += reference.run_reference(public, ours_http, theirs, theirs_http, p["domain"],
                                                            p["reference_domain"], known=known,
                                                            wait=p["wait"])
    out["reference_table"] = [reference.format_row(r) for r in out["reference_results"]]
    out["reference_different"] = [r["probe"] for r in out["reference_results"]
                                  if not r["identical"] and not r["known_difference"]]
    return out


if __name__ == "__main__":
    main()
