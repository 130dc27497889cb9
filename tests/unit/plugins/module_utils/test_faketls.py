# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for plugins/module_utils/_faketls.py.

The vectors in fixtures/faketls_vectors.json were captured on loopback from
the real mtg v2.2.8 binary; the network tests below only use 127.0.0.1.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time

import pytest

from ansible_collections.tgproxy.stealth.plugins.module_utils import _faketls as ft

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "faketls_vectors.json")


class DetRandom:
    """Deterministic random_fn: sha256(seed || counter) blocks, leftovers dropped."""

    def __init__(self, seed):
        self.seed = seed if isinstance(seed, bytes) else seed.encode()
        self.counter = 0

    def __call__(self, size):
        out = b""
        while len(out) < size:
            out += hashlib.sha256(self.seed + struct.pack(">I", self.counter)).digest()
            self.counter += 1
        return out[:size]


@pytest.fixture(scope="module")
def vectors():
    with open(FIXTURE) as handle:
        data = json.load(handle)
    data["key"] = bytes.fromhex(data["secret_key"])
    for name in ("accepted", "fronted"):
        data[name]["client_hello"] = bytes.fromhex(data[name]["client_hello"])
        data[name]["server_response"] = bytes.fromhex(data[name]["server_response"])
    data["fronted"]["key"] = bytes.fromhex(data["fronted"]["secret_key"])
    return data


KEY = bytes(range(0x40, 0x50))
SNI = "www.example.com"
NOW = 1700000000


def hello_for(key=KEY, sni=SNI, seed="unit", now=NOW):
    return ft.build_client_hello(key, sni, random_fn=DetRandom(seed), now=lambda: now)


# --- captured vectors --------------------------------------------------------------

def test_builder_reproduces_captured_hello(vectors):
    accepted = vectors["accepted"]
    built = ft.build_client_hello(vectors["key"], vectors["sni"],
                                  random_fn=DetRandom(accepted["seed"]),
                                  now=lambda: vectors["timestamp"])
    assert built == accepted["client_hello"]


def test_secret_in_vectors_is_consistent(vectors):
    raw = bytes.fromhex(vectors["secret"])
    assert raw[0] == 0xee
    assert raw[1:17] == vectors["key"]
    assert raw[17:].decode() == vectors["sni"]


def test_captured_answer_verifies(vectors):
    accepted = vectors["accepted"]
    client_random = ft.client_random_of(accepted["client_hello"])
    assert ft.verify_server_response(vectors["key"], client_random, accepted["server_response"])


def test_captured_answer_shape(vectors):
    accepted = vectors["accepted"]
    records, rest = ft.split_records(accepted["server_response"])
    assert rest == b""
    assert [r[0] for r in records] == [0x16, 0x14, 0x17]
    assert all(r[1] == b"\x03\x03" for r in records)
    assert records[1][2] == b"\x01"
    complete, info, reason = ft.classify_server_response(records)
    assert complete and reason is None
    assert info["tls_version"] == "TLSv1.3"
    # mtg echoes the session id and the first non-GREASE cipher suite
    hello = ft.parse_client_hello(accepted["client_hello"])
    assert info["session_id"] == hello["session_id"]
    first = [c for c in hello["cipher_suites"] if not ft.is_grease(c)][0]
    assert info["cipher_suite"] == first
    ext_types = [e[0] for e in info["extensions"]]
    assert ext_types == [ft.EXT_SUPPORTED_VERSIONS, ft.EXT_KEY_SHARE]


def test_server_random_is_hmac_over_client_random_and_answer(vectors):
    accepted = vectors["accepted"]
    response = accepted["server_response"]
    client_random = ft.client_random_of(accepted["client_hello"])
    zeroed = response[:11] + b"\x00" * 32 + response[43:]
    expected = hmac.new(vectors["key"], client_random + zeroed, hashlib.sha256).digest()
    assert response[11:43] == expected
    assert ft.compute_server_random(vectors["key"], client_random, response) == expected


def test_any_flipped_byte_is_rejected(vectors):
    accepted = vectors["accepted"]
    response = accepted["server_response"]
    client_random = ft.client_random_of(accepted["client_hello"])
    for pos in range(len(response)):
        broken = bytearray(response)
        broken[pos] ^= 0x01
        assert not ft.verify_server_response(vectors["key"], client_random, bytes(broken)), pos


def test_truncated_or_extended_answer_is_rejected(vectors):
    accepted = vectors["accepted"]
    response = accepted["server_response"]
    client_random = ft.client_random_of(accepted["client_hello"])
    assert not ft.verify_server_response(vectors["key"], client_random, response[:-1])
    assert not ft.verify_server_response(vectors["key"], client_random, response + b"\x00")
    assert not ft.verify_server_response(vectors["key"], client_random, response[:20])


def test_other_secret_or_client_random_is_rejected(vectors):
    accepted = vectors["accepted"]
    client_random = ft.client_random_of(accepted["client_hello"])
    other = bytes(bytearray(b ^ 0x80 for b in bytearray(vectors["key"])))
    assert not ft.verify_server_response(other, client_random, accepted["server_response"])
    wrong_random = bytes(32)
    assert not ft.verify_server_response(vectors["key"], wrong_random, accepted["server_response"])


def test_captured_hello_passes_mtg_style_check(vectors):
    accepted = vectors["accepted"]
    ts = ft.check_client_hello(accepted["client_hello"], vectors["key"])
    assert ts == vectors["timestamp"]
    with pytest.raises(ValueError):
        ft.check_client_hello(accepted["client_hello"], vectors["fronted"]["key"])


def test_fronted_answer_does_not_verify(vectors):
    fronted = vectors["fronted"]
    client_random = ft.client_random_of(fronted["client_hello"])
    records, rest = ft.split_records(fronted["server_response"])
    assert rest == b""
    complete, info, reason = ft.classify_server_response(records)
    # a real TLS 1.3 server has the same record shape ...
    assert complete and info["tls_version"] == "TLSv1.3"
    # ... but its random is not the HMAC, neither with the key used nor with mtg's key
    assert not ft.verify_server_response(fronted["key"], client_random, fronted["server_response"])
    assert not ft.verify_server_response(vectors["key"], client_random, fronted["server_response"])


# --- ClientHello layout ------------------------------------------------------------------

def test_client_hello_layout():
    hello = hello_for()
    assert len(hello) == 517
    assert hello[:3] == b"\x16\x03\x01"
    assert struct.unpack("!H", hello[3:5])[0] == len(hello) - 5
    assert hello[5] == 0x01
    assert struct.unpack("!I", b"\x00" + hello[6:9])[0] == len(hello) - 9
    assert hello[9:11] == b"\x03\x03"
    assert hello[43] == 32  # session id length right after the random
    parsed = ft.parse_client_hello(hello)
    assert parsed["sni"] == [SNI]
    assert len(parsed["session_id"]) == 32
    assert ft.is_grease(parsed["cipher_suites"][0])
    assert parsed["cipher_suites"][1] == 0x1301
    ext = dict(parsed["extensions"])
    assert ext[ft.EXT_SUPPORTED_VERSIONS][0] == 6
    assert b"\x03\x04" in ext[ft.EXT_SUPPORTED_VERSIONS]
    key_share = ext[ft.EXT_KEY_SHARE]
    idx = key_share.index(b"\x00\x1d\x00\x20")
    public = key_share[idx + 4:idx + 36]
    assert len(public) == 32
    assert ft.EXT_PADDING in ext


def test_client_random_placement_and_timestamp_xor():
    hello = hello_for()
    random = hello[11:43]
    zeroed = hello[:11] + b"\x00" * 32 + hello[43:]
    digest = hmac.new(KEY, zeroed, hashlib.sha256).digest()
    assert random[:28] == digest[:28]
    mixed = bytes(a ^ b for a, b in zip(random[28:], digest[28:]))
    assert struct.unpack("<I", mixed)[0] == NOW
    assert ft.check_client_hello(hello, KEY, now=NOW + 2, tolerance=3) == NOW
    with pytest.raises(ValueError):
        ft.check_client_hello(hello, KEY, now=NOW + 10, tolerance=3)


def test_only_timestamp_bytes_depend_on_time():
    one = hello_for(now=NOW)
    two = hello_for(now=NOW + 1)
    diff = [i for i in range(len(one)) if one[i] != two[i]]
    assert diff and all(39 <= i < 43 for i in diff)


def test_randomness_changes_everything_but_the_layout():
    one = ft.parse_client_hello(hello_for(seed="a"))
    two = ft.parse_client_hello(hello_for(seed="b"))
    assert one["session_id"] != two["session_id"]
    assert one["random"] != two["random"]
    assert [e[0] for e in one["extensions"] if not ft.is_grease(e[0])] == \
        [e[0] for e in two["extensions"] if not ft.is_grease(e[0])]


def test_default_randomness_gives_fresh_session_ids():
    ids = set(ft.parse_client_hello(ft.build_client_hello(KEY, SNI))["session_id"] for dummy in range(5))
    assert len(ids) == 5


def test_long_sni_is_not_padded():
    sni = ".".join(["a" * 60] * 4)
    hello = hello_for(sni=sni)
    parsed = ft.parse_client_hello(hello)
    assert parsed["sni"] == [sni]
    assert len(hello) > 517
    assert ft.check_client_hello(hello, KEY) == NOW


@pytest.mark.parametrize("sni", ["", "a" * 254, u"b\u00fccher.example"])
def test_bad_sni(sni):
    with pytest.raises(ValueError):
        hello_for(sni=sni)


@pytest.mark.parametrize("key", [b"", b"x" * 15, b"x" * 17, "x" * 16])
def test_bad_key(key):
    with pytest.raises(ValueError):
        ft.build_client_hello(key, SNI)


def test_x25519_rfc7748_vectors():
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u_coord = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert ft.x25519(scalar, u_coord).hex() == \
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    assert ft.x25519_public_key(alice).hex() == \
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    shared = ft.x25519(alice, ft.x25519_public_key(bob))
    assert shared == ft.x25519(bob, ft.x25519_public_key(alice))
    assert shared.hex() == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def test_grease_detection():
    assert ft.is_grease(0x0a0a) and ft.is_grease(0xfafa)
    assert not ft.is_grease(0x1301) and not ft.is_grease(0x0a1a)


# --- server answer classification -------------------------------------------------

def _server_hello(version_ext=True, random=b"\x11" * 32):
    ext = b""
    if version_ext:
        ext = b"\x00\x2b\x00\x02\x03\x04"
    body = b"\x03\x03" + random + b"\x20" + b"\x22" * 32 + b"\x13\x01\x00" + struct.pack("!H", len(ext)) + ext
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    return (0x16, b"\x03\x03", hs)


def test_classify_partial_and_bad_shapes():
    assert ft.classify_server_response([_server_hello()])[0] is False
    assert ft.classify_server_response([_server_hello()])[2] is None
    ccs = (0x14, b"\x03\x03", b"\x01")
    app = (0x17, b"\x03\x03", b"x" * 10)
    assert ft.classify_server_response([_server_hello(), ccs, app])[0] is True
    reason = ft.classify_server_response([_server_hello(version_ext=False)])[2]
    assert "TLSv1.2" in reason
    reason = ft.classify_server_response([_server_hello(random=ft.HELLO_RETRY_REQUEST_RANDOM)])[2]
    assert "HelloRetryRequest" in reason
    reason = ft.classify_server_response([_server_hello(), (0x16, b"\x03\x03", b"\x0b\x00\x00\x00")])[2]
    assert "ChangeCipherSpec" in reason
    reason = ft.classify_server_response([(0x15, b"\x03\x03", b"\x02\x28")])[2]
    assert "handshake_failure" in reason
    reason = ft.classify_server_response([(0x17, b"\x03\x03", b"")])[2]
    assert "not a handshake" in reason


# --- record helpers -------------------------------------------------------------------

def test_wrap_unwrap_roundtrip():
    data = os.urandom(40000)
    wire = ft.wrap_application_data(data)
    records, rest = ft.split_records(wire)
    assert rest == b""
    assert [len(r[2]) for r in records] == [16379, 16379, 40000 - 2 * 16379]
    assert all(r[0] == 0x17 and r[1] == b"\x03\x03" for r in records)
    payload, rest = ft.unwrap_application_data(wire)
    assert payload == data and rest == b""
    assert ft.wrap_application_data(b"") == b""


def test_unwrap_keeps_incomplete_tail_and_skips_other_records():
    wire = (b"\x14\x03\x03\x00\x01\x01" + ft.wrap_application_data(b"hello")
            + ft.wrap_application_data(b"world"))
    payload, rest = ft.unwrap_application_data(wire[:-2])
    assert payload == b"hello"
    assert rest == ft.wrap_application_data(b"world")[:-2]
    payload, rest = ft.unwrap_application_data(rest + wire[-2:])
    assert payload == b"world" and rest == b""


def test_unwrap_rejects_other_record_version():
    with pytest.raises(ValueError):
        ft.unwrap_application_data(b"\x17\x03\x01\x00\x01x")


# --- loopback: a tiny mtg-like server built from the pure helpers ----------------------

def _mtg_answer(key, client_hello):
    parsed = ft.parse_client_hello(client_hello)
    cipher = [c for c in parsed["cipher_suites"] if not ft.is_grease(c)][0]
    ext = b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x24\x00\x1d\x00\x20" + os.urandom(32)
    body = (b"\x03\x03" + b"\x00" * 32 + bytes([len(parsed["session_id"])]) + parsed["session_id"]
            + struct.pack("!H", cipher) + b"\x00" + struct.pack("!H", len(ext)) + ext)
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    noise = os.urandom(2600)
    packet = (b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs + b"\x14\x03\x03\x00\x01\x01"
              + b"\x17\x03\x03" + struct.pack("!H", len(noise)) + noise)
    server_random = ft.compute_server_random(key, ft.client_random_of(client_hello), packet)
    return packet[:11] + server_random + packet[43:]


class LoopbackServer:
    """One-connection-at-a-time server on 127.0.0.1 with a chosen behaviour."""

    def __init__(self, behaviour, key=KEY, fronted_answer=None):
        self.behaviour = behaviour
        self.key = key
        self.fronted_answer = fronted_answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.errors = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_hello(self, conn):
        header = b""
        while len(header) < 5:
            header += conn.recv(5 - len(header))
        length = struct.unpack("!H", header[3:5])[0]
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        return header + body

    def _serve(self):
        try:
            conn, dummy = self.sock.accept()
        except socket.timeout:
            return
        conn.settimeout(10)
        try:
            hello = self._read_hello(conn)
            if self.behaviour == "close":
                return
            if self.behaviour == "silent":
                time.sleep(1.5)
                return
            if self.behaviour == "alert":
                conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
                time.sleep(0.2)
                return
            if self.behaviour == "fronted":
                conn.sendall(self.fronted_answer)
                time.sleep(0.2)
                return
            try:
                ft.check_client_hello(hello, self.key, now=time.time(), tolerance=3)
            except ValueError:
                conn.sendall(self.fronted_answer or b"")
                time.sleep(0.2)
                return
            conn.sendall(_mtg_answer(self.key, hello))
            if self.behaviour == "echo":
                raw = b""
                for dummy in range(1000):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    payload, raw = ft.unwrap_application_data(raw + chunk)
                    if payload:
                        conn.sendall(ft.wrap_application_data(payload))
        except Exception as exc:  # surfaced by the tests
            self.errors.append(exc)
        finally:
            conn.close()

    def close(self):
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def server_factory():
    servers = []

    def make(*args, **kwargs):
        server = LoopbackServer(*args, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_selftest_ok(server_factory):
    server = server_factory("mtg")
    result = ft.selftest("127.0.0.1", server.port, KEY, SNI, timeout=5)
    assert result["ok"] is True, result
    assert result["step"] == "done"
    assert result["error"] is None
    assert result["tls_version"] == "TLSv1.3"
    assert result["server_hello_len"] > 2600
    assert result["elapsed_ms"] >= 0
    assert not server.errors


def test_selftest_wrong_secret_is_fronting(server_factory, vectors):
    server = server_factory("mtg", fronted_answer=vectors["fronted"]["server_response"])
    result = ft.selftest("127.0.0.1", server.port, bytes(16), SNI, timeout=5)
    assert result["ok"] is False
    assert result["step"] == "verify_server_hmac"
    assert "domain fronting" in result["error"]
    assert result["fronting_suspected"] is True


def test_selftest_connection_closed(server_factory):
    server = server_factory("close")
    result = ft.selftest("127.0.0.1", server.port, KEY, SNI, timeout=5)
    assert result["ok"] is False
    assert result["step"] == "read_server_hello"
    assert "closed" in result["error"]


def test_selftest_timeout_is_bounded(server_factory):
    server = server_factory("silent")
    started = time.monotonic()
    result = ft.selftest("127.0.0.1", server.port, KEY, SNI, timeout=0.5)
    assert time.monotonic() - started < 3
    assert result["step"] == "read_server_hello"
    assert "timed out" in result["error"]


def test_selftest_alert(server_factory):
    server = server_factory("alert")
    result = ft.selftest("127.0.0.1", server.port, KEY, SNI, timeout=5)
    assert result["step"] == "read_server_hello"
    assert "handshake_failure" in result["error"]
    assert result["fronting_suspected"] is True


def test_selftest_connect_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    result = ft.selftest("127.0.0.1", port, KEY, SNI, timeout=2)
    assert result["ok"] is False
    assert result["step"] == "connect"
    assert result["peer"] is None


def test_open_faketls_payload_roundtrip(server_factory):
    server = server_factory("echo")
    conn, result = ft.open_faketls("127.0.0.1", server.port, KEY, SNI, timeout=5)
    assert result["ok"], result
    with conn:
        conn.settimeout(5)
        data = os.urandom(50000)
        conn.sendall(data)
        echoed = conn.recv_exact(len(data))
    assert echoed == data
    assert not server.errors
