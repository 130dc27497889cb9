# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClientHello builders, answer classifiers and the probe-pair machinery of the probing suite."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import socket
import ssl
import struct
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.tgproxy.stealth.plugins.module_utils import _faketls, probes

DOMAIN = "proxy.example.com"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
            .sign(key, hashes.SHA256()))
    path = tmp_path_factory.mktemp("pki")
    (path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return str(path / "cert.pem"), str(path / "key.pem")


def server_context(certificate):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def server_hello_bytes(certificate):
    """The first flight a real TLS server (Python's) sends for a ClientHello: captured bytes."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = server_context(certificate).wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(probes.client_hello(DOMAIN))
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


class Server(object):
    """A TCP server on loopback: ``tls`` answers like a web server, ``close`` hangs up at once."""

    def __init__(self, mode, certificate=None):
        self.mode, self.ctx = mode, server_context(certificate) if certificate else None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.preambles = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        try:
            conn.settimeout(3)
            if self.mode == "close":
                conn.close()
                return
            head = conn.recv(16, socket.MSG_PEEK)
            if head.startswith(b"PROXY ") or head.startswith(b"\r\n\r\n\x00\r\nQUIT\n"):
                self.preambles.append(conn.recv(108 if head.startswith(b"PROXY") else 28))
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def endpoint(self, proxy_protocol="none"):
        return {"host": "127.0.0.1", "port": self.port, "proxy_protocol": proxy_protocol}

    def stop(self):
        self.sock.close()


def test_client_hello_is_a_real_hello_with_the_sni():
    parsed = _faketls.parse_client_hello(probes.client_hello(DOMAIN))
    assert parsed["sni"] == [DOMAIN]
    assert _faketls.parse_client_hello(probes.client_hello(None))["sni"] == []


def test_malformed_builders():
    with pytest.raises(ValueError, match="trailing bytes after extensions"):
        _faketls.parse_client_hello(probes.hello_with_empty_extensions_and_trailing_bytes(DOMAIN))
    bad = probes.wrong_record_version(DOMAIN)
    assert bad[0] == 0x16 and bad[1:3] == b"\x02\x05"
    big = probes.oversized_record(DOMAIN)
    assert struct.unpack("!H", big[3:5])[0] == 16384 + 2049
    cut = probes.truncated_record(DOMAIN)
    assert struct.unpack("!H", cut[3:5])[0] > len(cut) - 5


def test_proxy_headers():
    assert probes.proxy_header("v1", ("127.0.0.1", 40000), ("127.0.0.1", 8443)) == \
        b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 8443\r\n"
    v2 = probes.proxy_header("v2", ("127.0.0.1", 40000), ("127.0.0.1", 8443))
    assert v2 == (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([127, 0, 0, 1, 127, 0, 0, 1])
                  + struct.pack("!HH", 40000, 8443))
    assert probes.proxy_header("none", ("::1", 1), ("::1", 2)) == b""
    assert probes.proxy_header("v2", ("::1", 1), ("::1", 2))[13] == 0x21
    with pytest.raises(ValueError):
        probes.proxy_header("v3", ("::1", 1), ("::1", 2))


@pytest.mark.parametrize("data,expected", [
    (b"", {"kind": "nothing"}),
    (b"\x15\x03\x03\x00\x02\x02\x32", {"kind": "tls_alert", "level": 2, "alert": "decode_error"}),
    (b"\x15\x03\x01\x00\x02\x02\x46", {"kind": "tls_alert", "level": 2, "alert": "protocol_version"}),
    (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n", {"kind": "http", "status": "HTTP/1.1 400 Bad Request"}),
    (b"SSH-2.0-OpenSSH_9.2p1\r\n", {"kind": "ssh_banner"}),
    (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08", {"kind": "other", "head": "0001020304050607"}),
])
def test_classify_captured_answers(data, expected):
    assert probes.classify(data) == expected


def test_classify_a_captured_server_hello(certificate):
    seen = probes.classify(server_hello_bytes(certificate))
    assert seen["kind"] == "server_hello" and seen["version"] == "TLSv1.3" and seen["hrr"] is False


@pytest.mark.parametrize("seconds,name", [(None, "open"), (0.01, "immediate"), (1.0, "<2s"), (5, "<10s"),
                                          (30, ">=10s")])
def test_timing_classes(seconds, name):
    assert probes.timing_class(seconds) == name


def test_same_server_on_both_sides_is_identical_everywhere(certificate):
    server = Server("tls", certificate)
    try:
        results = probes.run_suite(server.endpoint(), server.endpoint("v2"), DOMAIN, wait=0.5)
    finally:
        server.stop()
    assert len(results) == 14
    assert [r["probe"] for r in results if not r["identical"]] == [], [probes.format_row(r) for r in results]
    by_name = dict((r["probe"], r) for r in results)
    assert by_name["alpn_h2"]["public"]["alpn"] == "h2"
    assert by_name["tls12_only"]["public"]["version"] == "TLSv1.2"
    assert by_name["ext_len_zero_trailing"]["public"]["first"]["kind"] == "tls_alert"
    # the backend side got its PROXY v2 header first, and still answered the same
    assert any(p.startswith(b"\r\n\r\n\x00\r\nQUIT\n") for p in server.preambles)


def test_a_server_that_hangs_up_is_told_apart(certificate):
    tls, rude = Server("tls", certificate), Server("close")
    try:
        plain, = probes.run_suite(rude.endpoint(), tls.endpoint(), DOMAIN, only=["random_sni"], wait=0.5)
        known, = probes.run_suite(rude.endpoint(), tls.endpoint(), DOMAIN, only=["random_sni"], wait=0.5,
                                  known={"random_sni": "documented"})
    finally:
        tls.stop()
        rude.stop()
    assert plain["identical"] is False and "handshake" in plain["differs_in"]
    assert plain["known_difference"] is None
    assert "DIFFERENT (cipher, handshake" in probes.format_row(plain)
    assert known["known_difference"] == "documented" and "known difference" in probes.format_row(known)


def test_connection_refused_is_an_observation():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    seen = probes.observe_raw({"host": "127.0.0.1", "port": port}, b"x", wait=0.2)
    assert seen["first"] == {"kind": "connect_failed", "error": "ECONNREFUSED"}


def test_known_reason_limits_to_the_listed_fields():
    assert probes.known_reason({"p": "why"}, "p", ["close"]) == "why"
    assert probes.known_reason({"p": {"fields": ["close"], "reason": "rst"}}, "p", ["close"]) == "rst"
    # the alert changed too: no longer the known difference
    assert probes.known_reason({"p": {"fields": ["close"], "reason": "rst"}}, "p", ["close", "first"]) is None
    assert probes.known_reason({"p": "why"}, "p", []) is None
    assert probes.known_reason({}, "p", ["close"]) is None
