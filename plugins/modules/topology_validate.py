#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: topology_validate
short_description: Reject every known misconfiguration of a proxy host's topology before anything changes
version_added: "0.1.0"
description:
  - Checks the whole topology of one host (mtg, the SNI router, the web server, other
    listeners) for the mistakes that break real deployments silently, and reports every
    violation at once.
  - An action plugin of the same name runs the check on the controller, in process (no
    round trip to any host); the module itself runs it wherever it is sent.
  - Each finding has a stable code (C(TGP101), ...), a severity, the variables involved, a
    message, what breaks in production and the fix. The table of all checks is in
    the README (section Topology validator); the schema of I(topology) and its defaults are documented
    in C(plugins/module_utils/validator.py).
  - Fails when any finding is an error, listing every error. Warnings are returned and shown,
    and do not fail the task.
  - Runs on the controller (C(delegate_to=localhost)) and changes nothing; it never reports
    C(changed).
  - The mtg secret, when the topology carries one, is masked in everything the module returns.
  - The filters C(tgproxy.stealth.tgp_validate) and C(tgproxy.stealth.tgp_topology_errors) run
    the same checks (without DNS).
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
  topology:
    description:
      - The host's topology, e.g. C(kind), C(domain), C(public_ipv4), C(public_ipv6),
        C(proxy_protocol), C(mtg), C(router), C(web), C(other_services).
      - Omitted values take the documented defaults.
    type: dict
    required: true
  variables:
    description:
      - Maps paths of the topology document (C(mtg.stats_bind)) to the inventory variables they come
        from (C(mtg_stats_bind_to)), so messages name the variable the user sets.
    type: dict
    default: {}
  resolve_dns:
    description:
      - Also check DNS (warnings only), using the controller's resolver. The domain should
        resolve to I(topology.public_ipv4)/I(topology.public_ipv6), and a fronting hostname
        should not resolve back to this host's entry point.
    type: bool
    default: false
author:
  - tgproxy.stealth contributors (@tgproxy)
"""

EXAMPLES = r"""
- name: Check the topology before any host changes
  tgproxy.stealth.topology_validate:
    topology:
      kind: sni_router
      domain: proxy.example.com
      public_ipv4: 203.0.113.10
      proxy_protocol: true
      router:
        kind: haproxy
      web:
        kind: caddy
  delegate_to: localhost

- name: Validate, also checking DNS, and keep the result
  tgproxy.stealth.topology_validate:
    topology: "{{ tgproxy_topology }}"
    resolve_dns: true
  delegate_to: localhost
  register: topology_check

- name: Show the warnings in full
  ansible.builtin.debug:
    var: topology_check.warning_findings
"""

RETURN = r"""
findings:
  description: Every violation, errors and warnings, sorted by code.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Stable code of the check.
      type: str
      sample: TGP101
    severity:
      description: C(error) or C(warning).
      type: str
      sample: error
    vars:
      description: The variables involved, as dotted paths into the topology.
      type: list
      elements: str
      sample: [router.backends.mtg.send_proxy, mtg.proxy_protocol_listener]
    msg:
      description: What is wrong, with the values involved.
      type: str
    breaks:
      description: What breaks in production.
      type: str
    fix:
      description: How to fix it.
      type: str
errors:
  description: The findings of severity C(error).
  returned: always
  type: list
  elements: dict
warning_findings:
  description:
    - The findings of severity C(warning) (C(warnings) itself holds their text, as for any module).
  returned: always
  type: list
  elements: dict
topology:
  description: The topology with every default filled in, the secret masked.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import validator

# the work itself is in the model: an action plugin of the same name runs it on
# the controller (no round trip); this module runs it where it is sent
secret_forms = validator.secret_forms
error_message = validator.error_message
run = validator.check_document
ARGUMENT_SPEC = validator.CHECK_DOCUMENT_SPEC


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    for form in secret_forms(module.params["topology"]):
        module.no_log_values.add(form)
    findings, result = run(module.params["topology"], module.params["resolve_dns"], variables=module.params["variables"])
    for finding in validator.warnings(findings):
        module.warn(validator.finding_text(finding))
    errors = validator.errors(findings)
    if errors:
        module.fail_json(msg=error_message(errors), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
