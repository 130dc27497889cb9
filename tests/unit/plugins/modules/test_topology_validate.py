# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the topology_validate module: main() through AnsibleModule, no network."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.tgproxy.stealth.plugins.module_utils import validator
from ansible_collections.tgproxy.stealth.plugins.modules import topology_validate as mod

from module_harness import ExitJson, FailJson, module_args

KEY = bytes(range(1, 17))
DOMAIN = "proxy.example.com"
SECRET = "ee" + KEY.hex() + DOMAIN.encode("ascii").hex()
GOOD = {"kind": "sni_router", "domain": DOMAIN, "public_ipv4": "203.0.113.10", "mtg": {"secret": SECRET},
        "router": {"kind": "haproxy"}}


@pytest.fixture
def run_main(monkeypatch):
    warned = []

    def masked(self, kwargs):
        # what AnsibleModule does before printing: add the invocation, strip no_log values
        kwargs.setdefault("invocation", {"module_args": self.params})
        preserved = dict((k, val) for k, val in kwargs.items() if val is None or isinstance(val, bool))
        kwargs = remove_values(kwargs, self.no_log_values)
        kwargs.update(preserved)
        return kwargs

    def exit_json(self, **kwargs):
        raise ExitJson(masked(self, kwargs))

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise FailJson(masked(self, kwargs))

    def warn(self, warning):
        warned.append(warning)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)

    def runner(args):
        del warned[:]
        with module_args(args):
            try:
                mod.main()
            except (ExitJson, FailJson) as exc:
                return exc.args[0], list(warned)
        raise AssertionError("module did not exit")

    return runner


def test_good_topology_exits_unchanged(run_main):
    result, warned = run_main({"topology": GOOD})
    assert "failed" not in result and result["changed"] is False
    assert result["findings"] == [] and result["errors"] == [] and result["warning_findings"] == []
    assert result["topology"]["router"]["backends"]["mtg"]["address"] == "127.0.0.1:3128"
    assert warned == []


def test_check_mode_is_the_same(run_main):
    result, warned = run_main({"topology": GOOD, "_ansible_check_mode": True})
    assert "failed" not in result and result["changed"] is False and result["findings"] == []


def test_errors_fail_with_every_error_listed(run_main):
    bad = dict(GOOD, mtg={"secret": SECRET, "proxy_protocol_listener": True, "bind": "0.0.0.0:3128"},
               router={"kind": "haproxy", "terminates_tls": True,
                       "backends": {"mtg": {"address": "127.0.0.1:3128", "send_proxy": "none"},
                                    "web": {"address": "127.0.0.1:8443"}}})
    result, warned = run_main({"topology": bad})
    assert result["failed"] is True and result["changed"] is False
    assert [e["code"] for e in result["errors"]] == ["TGP101", "TGP201", "TGP301"]
    for code, var in (("TGP101", "mtg.proxy_protocol_listener"), ("TGP201", "router.terminates_tls"),
                      ("TGP301", "mtg.bind")):
        assert code in result["msg"] and var in result["msg"]
    assert "Fix:" in result["msg"] and "3 error(s)" in result["msg"]


def test_warnings_are_returned_and_shown_but_do_not_fail(run_main):
    topology = dict(GOOD, router={"kind": "haproxy", "maxconn": 100})
    result, warned = run_main({"topology": topology})
    assert "failed" not in result
    assert [w["code"] for w in result["warning_findings"]] == ["TGP204"]
    assert result["errors"] == [] and len(result["findings"]) == 1
    assert len(warned) == 1 and warned[0].startswith("TGP204 [mtg.concurrency, router.maxconn]: ")


def test_secret_is_masked_everywhere(run_main):
    bad = dict(GOOD, domain="other.example.com")
    result, warned = run_main({"topology": bad})
    assert result["failed"] is True and "TGP503" in result["msg"]
    assert SECRET not in json.dumps(result)
    assert result["topology"]["mtg"]["secret"] != SECRET
    assert result["invocation"]["module_args"]["topology"]["mtg"]["secret"] != SECRET


def test_secret_forms_cover_both_encodings():
    forms = mod.secret_forms({"mtg": {"secret": " %s\n" % SECRET}})
    assert SECRET in forms and SECRET.upper() in forms and len(forms) == 5
    assert mod.secret_forms({"mtg": {"secret": "ee12"}}) == ["ee12", "ee12"]
    assert mod.secret_forms({"mtg": "x"}) == [] and mod.secret_forms({}) == []


def test_resolve_dns_uses_the_resolver(monkeypatch, run_main):
    calls = []

    def resolver(name):
        calls.append(name)
        return ["198.51.100.1"]

    monkeypatch.setattr(validator, "default_resolver", resolver)
    result, warned = run_main({"topology": GOOD, "resolve_dns": True})
    assert "failed" not in result and calls == [DOMAIN]
    assert [w["code"] for w in result["warning_findings"]] == ["TGP901"]
    result, warned = run_main({"topology": GOOD})
    assert calls == [DOMAIN] and result["findings"] == []


def test_run_without_ansible():
    findings, result = mod.run({"domain": DOMAIN, "kind": "mesh"}, False)
    assert [f.code for f in findings] == ["TGP001"] and result["errors"][0]["code"] == "TGP001"
    findings, result = mod.run(GOOD, True, resolver=lambda name: ["203.0.113.10"])
    assert findings == [] and result["topology"]["kind"] == "sni_router"


def test_topology_is_required(run_main):
    result, warned = run_main({})
    assert result["failed"] is True and "topology" in result["msg"]


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert set(doc["options"]) == {"topology", "resolve_dns", "variables"}
    assert doc["options"]["resolve_dns"]["default"] is False
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert doc["attributes"]["diff_mode"]["support"] == "none"
    assert doc["attributes"]["idempotent"]["support"] == "full"
    assert doc["extends_documentation_fragment"] == ["tgproxy.stealth.attributes"]
    assert yaml.safe_load(mod.EXAMPLES)
    returned = yaml.safe_load(mod.RETURN)
    assert set(returned) == {"findings", "errors", "warning_findings", "topology"}
