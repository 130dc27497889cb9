#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: faketls_selftest
short_description: Check that an mtg proxy answers the FakeTLS handshake for a secret
version_added: 1.0.0
description:
  - Connects to an mtg (MTProto proxy, v2) endpoint and sends a FakeTLS
    ClientHello whose client random is authenticated with the proxy secret,
    exactly like a Telegram client does.
  - The handshake passes when the server answers with a ServerHello,
    ChangeCipherSpec and ApplicationData records whose server random is the
    HMAC-SHA256 of the secret over the client random and the whole answer.
  - With a wrong secret, a wrong SNI or a clock skew beyond the proxy's
    C(tolerate-time-skewness), mtg relays the connection to the fronting web
    server, which answers like any TLS server; the module reports this as a
    failure at the C(verify_server_hmac) step.
  - Nothing is changed on any host; the result is never C(changed).
  - Only the Python 3 standard library is used on the host that runs the check.
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
    description:
      - Address or host name of the proxy to test.
    type: str
    required: true
  port:
    description:
      - TCP port of the proxy.
    type: int
    default: 443
  secret:
    description:
      - The proxy secret, either in hex form (V(ee) + 32 hex digits of key +
        hex of the domain) or in base64url form, as printed by
        C(mtg generate-secret) and C(mtg access).
    type: str
    required: true
  sni:
    description:
      - Server name to send in the ClientHello.
      - Defaults to the fronting domain encoded in O(secret). Any other value
        makes mtg front the connection, which is useful to test that path.
    type: str
  timeout:
    description:
      - Overall time limit in seconds for connecting, sending and reading the answer.
    type: float
    default: 5.0
  expect:
    description:
      - V(pass) succeeds only if the handshake verifies.
      - V(fail) succeeds only if the proxy received the ClientHello and did
        B(not) prove knowledge of the secret, for example because it fronted
        the connection to the web server. Failing to connect or to send the
        ClientHello is still an error with V(fail), because it proves nothing.
    type: str
    choices: [pass, fail]
    default: pass
  proxy_protocol:
    description:
      - Send a PROXY protocol header (V(v1) or V(v2)) before the ClientHello, as an SNI router does to an mtg
        whose listener requires one (C(proxy-protocol-listener)). Used to check an mtg instance on its loopback
        port directly, before the router sends it anything.
    type: str
    choices: [none, v1, v2]
    default: none
  repeat:
    description:
      - Perform the handshake this many times, one after the other; every one must meet O(expect). A path that
        works only now and then (a router deciding before the ClientHello has arrived, for example) fails.
      - The result is the last handshake's (the first failing one's on failure), with C(attempts) added.
    type: int
    default: 1
notes:
  - mtg checks the timestamp embedded in the ClientHello; the clock of the
    host that runs this module must be within C(tolerate-time-skewness)
    (mtg default 3s) of the proxy host clock.
  - When mtg runs with anti-replay enabled, every check uses a fresh random
    session id, so repeated checks are not treated as replays.
"""

EXAMPLES = r"""
- name: Check the proxy with its own secret
  tgproxy.stealth.faketls_selftest:
    host: 127.0.0.1
    port: 443
    secret: "{{ mtg_secret }}"

- name: Prove that a wrong secret is not accepted (mtg must front it)
  tgproxy.stealth.faketls_selftest:
    host: "{{ ansible_host }}"
    port: 443
    # key 000102...0f + "www.example.com": any key that is not the real one
    secret: ee000102030405060708090a0b0c0d0e0f7777772e6578616d706c652e636f6d
    expect: fail
  delegate_to: localhost

- name: Check with a different SNI (must be fronted)
  tgproxy.stealth.faketls_selftest:
    host: proxy.example.net
    secret: "{{ mtg_secret }}"
    sni: not-the-fronting-domain.example
    expect: fail
"""

RETURN = r"""
attempts:
  description: Handshakes made (with O(repeat), the number of the first that failed).
  returned: always
  type: int
  sample: 20
ok:
  description: Whether the FakeTLS handshake verified with the secret.
  returned: always
  type: bool
  sample: true
step:
  description:
    - Last step reached, one of V(connect), V(send_client_hello),
      V(read_server_hello), V(verify_server_hmac), V(done).
  returned: always
  type: str
  sample: done
error:
  description: Why the handshake did not verify, or V(null).
  returned: always
  type: str
  sample: null
server_hello_len:
  description: Number of bytes of the server answer that were read.
  returned: always
  type: int
  sample: 4172
elapsed_ms:
  description: Time the check took, in milliseconds.
  returned: always
  type: float
  sample: 7.06
tls_version:
  description: TLS version selected by the ServerHello, if one was received.
  returned: always
  type: str
  sample: TLSv1.3
cipher_suite:
  description: Cipher suite selected by the ServerHello, as hex, if one was received.
  returned: always
  type: str
  sample: "0x1301"
fronting_suspected:
  description: True when a TLS server answered but not as mtg with this secret would.
  returned: always
  type: bool
  sample: false
peer:
  description: Address the module connected to.
  returned: always
  type: str
  sample: "127.0.0.1:443"
sni:
  description: Server name sent in the ClientHello.
  returned: always
  type: str
  sample: www.example.com
host:
  description: The O(host) that was tested.
  returned: always
  type: str
  sample: 127.0.0.1
port:
  description: The O(port) that was tested.
  returned: always
  type: int
  sample: 443
expect:
  description: The O(expect) value the result was judged against.
  returned: always
  type: str
  sample: pass
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tgproxy.stealth.plugins.module_utils.topology import Secret
from ansible_collections.tgproxy.stealth.plugins.module_utils._faketls import (
    STEP_CONNECT,
    STEP_SEND_CLIENT_HELLO,
    selftest,
)

SECRET_KIND_FAKETLS = 0xee
SECRET_KEY_LEN = 16

HINTS = {
    "connect": "that mtg is running and listening on this address and port "
               "(service status, bind-to) and that no firewall blocks the path",
    "send_client_hello": "firewalls or middleboxes on the path and the mtg concurrency "
                         "limit (the connection was accepted but dropped while sending)",
    "read_server_hello": "the mtg logs and that the domain-fronting target of mtg is "
                         "reachable from the proxy host; make sure it is mtg that listens here",
    "verify_server_hmac": "that the secret matches the 'secret' of the mtg configuration, "
                          "that the SNI is the domain of the secret and that the clocks of "
                          "both hosts are synchronised (NTP)",
}


def parse_secret(text):
    """``(key, domain)`` of an mtg secret, read by the topology model."""
    secret = Secret.parse(text)
    return secret.key, secret.domain


def judge(result, expect):
    """Return ``None`` if ``result`` meets ``expect``, else a failure message."""
    if expect == "pass":
        if result["ok"]:
            return None
        return "FakeTLS self-test of %s port %s failed at step %s: %s. Check: %s." % (
            result["host"], result["port"], result["step"], result["error"],
            HINTS.get(result["step"], "the mtg service"))
    if result["ok"]:
        return ("FakeTLS handshake of %s port %s verified with this secret/SNI but "
                "expect=fail: the proxy accepted it" % (result["host"], result["port"]))
    if result["step"] in (STEP_CONNECT, STEP_SEND_CLIENT_HELLO):
        return ("FakeTLS self-test of %s port %s is inconclusive with expect=fail: it "
                "stopped at step %s (%s). Check: %s." % (
                    result["host"], result["port"], result["step"], result["error"],
                    HINTS[result["step"]]))
    return None


def run(params, selftest_fn=None):
    """Validate ``params`` and run the check; returns ``(failure_msg, result)``."""
    if selftest_fn is None:
        selftest_fn = selftest
    key, domain = parse_secret(params["secret"])
    sni = params.get("sni") or domain
    timeout = params.get("timeout")
    timeout = 5.0 if timeout is None else float(timeout)
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    port = params.get("port")
    port = 443 if port is None else int(port)
    if not 0 < port < 65536:
        raise ValueError("port must be between 1 and 65535")
    result = dict(selftest_fn(params["host"], port, key, sni, timeout=timeout,
                              proxy_protocol=params.get("proxy_protocol") or "none"))
    result["expect"] = params.get("expect") or "pass"
    return judge(result, result["expect"]), result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=443),
            secret=dict(type="str", required=True, no_log=True),
            sni=dict(type="str"),
            timeout=dict(type="float", default=5.0),
            expect=dict(type="str", choices=["pass", "fail"], default="pass"),
            repeat=dict(type="int", default=1),
            proxy_protocol=dict(type="str", choices=["none", "v1", "v2"], default="none"),
        ),
        supports_check_mode=True,
    )
    if module.params["repeat"] < 1:
        module.fail_json(msg="repeat must be 1 or more", changed=False)
    attempt = 0
    try:
        for attempt in range(1, module.params["repeat"] + 1):
            failure, result = run(module.params)
            if failure:
                failure = "attempt %d of %d: %s" % (attempt, module.params["repeat"], failure)
                break
    except ValueError as exc:
        module.fail_json(msg="invalid parameters: %s" % exc, changed=False)
    result["attempts"] = attempt
    result["changed"] = False
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
