# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the faketls_selftest module (no network)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json

import pytest


from ansible_collections.tgproxy.stealth.plugins.modules import faketls_selftest as mod

from module_harness import patch_exits
from module_harness import run_main as harness_run_main

# Same secret in both encodings, as printed by mtg v2.2.8 itself
# (hex by `generate-secret --hex`, base64url in its config dump).
SECRET_HEX = "ee62568f41abc0a74536e2868b5e2a6b3766726f6e742e6578616d706c652e6f7267"
SECRET_B64 = "7mJWj0GrwKdFNuKGi14qazdmcm9udC5leGFtcGxlLm9yZw"
KEY = bytes.fromhex("62568f41abc0a74536e2868b5e2a6b37")
DOMAIN = "front.example.org"


# --- secret parsing ------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    SECRET_HEX,
    SECRET_HEX.upper(),
    "  %s\n" % SECRET_HEX,
    SECRET_B64,
    SECRET_B64 + "=",  # tolerated padding
    base64.b64encode(bytes.fromhex(SECRET_HEX)).decode(),  # standard alphabet
])
def test_parse_secret_forms(text):
    assert mod.parse_secret(text) == (KEY, DOMAIN)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   ", "empty"),
    ("ee", "truncated"),
    ("dd" + "11" * 16 + "6162", "FakeTLS"),
    ("ee" + "11" * 16, "no domain"),
    ("ee" + "11" * 8, "key is 8 bytes"),
    ("ee" + "00" * 16 + "6162", "all zeros"),
    ("%%%not-a-secret%%%", "neither hex nor base64url"),
    ("ee" + "11" * 16 + "ff", "not ASCII"),
])
def test_parse_secret_errors(text, message):
    with pytest.raises(ValueError) as err:
        mod.parse_secret(text)
    assert message in str(err.value)


# --- judging results -----------------------------------------------------------------

def _result(ok, step, error=None):
    return {"ok": ok, "step": step, "error": error, "host": "h", "port": 443}


def test_judge_pass():
    assert mod.judge(_result(True, "done"), "pass") is None
    msg = mod.judge(_result(False, "verify_server_hmac", "domain fronting"), "pass")
    assert "verify_server_hmac" in msg and "domain fronting" in msg
    assert "secret" in msg  # the hint names what to check
    msg = mod.judge(_result(False, "connect", "refused"), "pass")
    assert "connect" in msg and "listening" in msg


def test_judge_fail():
    assert mod.judge(_result(False, "verify_server_hmac", "x"), "fail") is None
    assert mod.judge(_result(False, "read_server_hello", "closed"), "fail") is None
    assert "accepted" in mod.judge(_result(True, "done"), "fail")
    assert "inconclusive" in mod.judge(_result(False, "connect", "refused"), "fail")
    assert "inconclusive" in mod.judge(_result(False, "send_client_hello", "reset"), "fail")


# --- run() with a fake selftest --------------------------------------------------------

class FakeSelftest:
    def __init__(self, ok=True, step="done", error=None):
        self.calls = []
        self.ok, self.step, self.error = ok, step, error

    def __call__(self, host, port, key, sni, timeout=5.0, family=None, proxy_protocol="none"):
        self.calls.append((host, port, key, sni, timeout))
        self.proxy_protocol = proxy_protocol
        return {"ok": self.ok, "step": self.step, "error": self.error, "host": host,
                "port": port, "sni": sni, "server_hello_len": 0, "elapsed_ms": 1.0,
                "tls_version": None}


def _params(**kwargs):
    params = {"host": "127.0.0.1", "port": 443, "secret": SECRET_HEX, "sni": None,
              "timeout": 5.0, "expect": "pass"}
    params.update(kwargs)
    return params


def test_run_defaults_sni_to_secret_domain():
    fake = FakeSelftest()
    failure, result = mod.run(_params(), selftest_fn=fake)
    assert failure is None
    assert fake.calls == [("127.0.0.1", 443, KEY, DOMAIN, 5.0)]
    assert result["expect"] == "pass"


def test_run_custom_sni_port_timeout():
    fake = FakeSelftest()
    mod.run(_params(sni="other.example", port=8443, timeout=1.5, secret=SECRET_B64), selftest_fn=fake)
    assert fake.calls == [("127.0.0.1", 8443, KEY, "other.example", 1.5)]


def test_run_passes_the_proxy_protocol_version():
    fake = FakeSelftest()
    mod.run(_params(proxy_protocol="v2"), selftest_fn=fake)
    assert fake.proxy_protocol == "v2"
    mod.run(_params(), selftest_fn=fake)
    assert fake.proxy_protocol == "none"


@pytest.mark.parametrize("version, head", [("v2", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11"), ("v1", b"PROXY TCP4 127.0.0.1 127.0.0.1 "),
                                           ("none", b"\x16\x03\x01")])
def test_the_proxy_header_goes_first_on_the_wire(version, head):
    """A listener that requires PROXY gets the header before the ClientHello (a real socket on loopback)."""
    import socket
    import threading
    from ansible_collections.tgproxy.stealth.plugins.module_utils import _faketls
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []

    def serve():
        conn, dummy = server.accept()
        got.append(conn.recv(64))
        conn.close()
    thread = threading.Thread(target=serve)
    thread.start()
    result = _faketls.selftest("127.0.0.1", server.getsockname()[1], KEY, DOMAIN, timeout=2.0, proxy_protocol=version)
    thread.join(5)
    server.close()
    assert not result["ok"] and got and got[0].startswith(head), (got, result)


def test_run_expect_fail():
    fake = FakeSelftest(ok=False, step="verify_server_hmac", error="fronting")
    failure, result = mod.run(_params(expect="fail"), selftest_fn=fake)
    assert failure is None
    failure, result = mod.run(_params(expect="pass"), selftest_fn=fake)
    assert "verify_server_hmac" in failure


@pytest.mark.parametrize("params", [
    {"timeout": 0.0}, {"timeout": -1.0}, {"port": 70000}, {"port": -1}, {"secret": "xx"},
])
def test_run_invalid(params):
    with pytest.raises(ValueError):
        mod.run(_params(**params), selftest_fn=FakeSelftest())


# --- main() through AnsibleModule ----------------------------------------------------------

@pytest.fixture
def run_main(monkeypatch):
    patch_exits(monkeypatch)

    def runner(args, fake=None):
        fake = fake or FakeSelftest()
        monkeypatch.setattr(mod, "selftest", fake)
        return harness_run_main(mod.main, args), fake

    return runner


def test_main_ok(run_main):
    result, fake = run_main({"host": "127.0.0.1", "secret": SECRET_HEX})
    assert result["changed"] is False
    assert result["ok"] is True
    assert "failed" not in result
    assert fake.calls[0][1:] == (443, KEY, DOMAIN, 5.0)


def test_main_check_mode(run_main):
    result, fake = run_main({"host": "127.0.0.1", "secret": SECRET_HEX, "_ansible_check_mode": True})
    assert result["changed"] is False and result["ok"] is True
    assert fake.calls


def test_main_failure_names_step(run_main):
    fake = FakeSelftest(ok=False, step="verify_server_hmac", error="domain fronting")
    result, dummy = run_main({"host": "127.0.0.1", "port": 3443, "secret": SECRET_HEX}, fake)
    assert result["failed"] is True
    assert "verify_server_hmac" in result["msg"]
    assert result["step"] == "verify_server_hmac"
    assert result["changed"] is False


def test_main_expect_fail_passes_on_rejection(run_main):
    fake = FakeSelftest(ok=False, step="verify_server_hmac", error="domain fronting")
    result, dummy = run_main({"host": "127.0.0.1", "secret": SECRET_HEX, "expect": "fail"}, fake)
    assert "failed" not in result
    assert result["ok"] is False and result["expect"] == "fail"


def test_main_bad_secret(run_main):
    result, fake = run_main({"host": "127.0.0.1", "secret": "nope"})
    assert result["failed"] is True
    assert "invalid parameters" in result["msg"]
    assert not fake.calls


def test_main_bad_choice(run_main):
    result, fake = run_main({"host": "127.0.0.1", "secret": SECRET_HEX, "expect": "maybe"})
    assert result["failed"] is True
    assert not fake.calls


def test_main_missing_required(run_main):
    result, fake = run_main({"secret": SECRET_HEX})
    assert result["failed"] is True
    assert "host" in result["msg"]


def test_secret_is_no_log(run_main):
    result, dummy = run_main({"host": "127.0.0.1", "secret": SECRET_HEX})
    assert SECRET_HEX not in json.dumps(result)


def test_documentation_matches_argument_spec():
    import yaml
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert set(doc["options"]) == {"host", "port", "secret", "sni", "timeout", "expect", "repeat", "proxy_protocol"}
    assert doc["options"]["expect"]["choices"] == ["pass", "fail"]
    assert doc["attributes"]["check_mode"]["support"] == "full"
    yaml.safe_load(mod.EXAMPLES)
    yaml.safe_load(mod.RETURN)
