# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Active-probing suite: what a censor's probe sees on the proxy's public
endpoint, compared with what the web server alone answers to the same bytes.

Each probe sends one stimulus to two endpoints (the public one, and the web
backend directly, with the PROXY header it expects) and reduces each answer to
an *observation*: the first answer (TLS alert and its description, ServerHello
version and cipher, HTTP status line, SSH banner, nothing), how the server
closed (FIN, RST, still open at the end of the probe), the timing class of the
close and, for full handshakes, the negotiated version, cipher, ALPN and the
leaf certificate. A probe passes when both observations are equal.

Stdlib only (``_faketls`` builds the FakeTLS ClientHello of the replay probe).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import errno
import hashlib
import os
import socket
from concurrent.futures import ThreadPoolExecutor
import ssl
import struct
import time

try:
    from ansible_collections.tgproxy.stealth.plugins.module_utils import _faketls
except ImportError:  # imported by path (tests, test bed tools)
    import _faketls  # type: ignore

RECORD_ALERT = 0x15
RECORD_HANDSHAKE = 0x16
ALERTS = dict(_faketls.ALERT_DESCRIPTIONS)
ALERTS.update({0: "close_notify", 21: "decryption_failed", 22: "record_overflow", 48: "unknown_ca",
               49: "access_denied", 90: "user_canceled", 100: "no_renegotiation"})
# close timing classes, in seconds
TIMING_CLASSES = ((0.2, "immediate"), (2.0, "<2s"), (10.0, "<10s"))


def timing_class(seconds):
    if seconds is None:
        return "open"
    for limit, name in TIMING_CLASSES:
        if seconds < limit:
            return name
    return ">=10s"


# one implementation, shared with the FakeTLS self-test (a PROXY listener behind the router)
proxy_header = _faketls.proxy_header


# --- stimuli --------------------------------------------------------------------------
def client_context(alpn=None, max_version=None):
    """Python's TLS client as the probes use it: no verification (the answer is what is compared)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if max_version == "TLSv1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def client_hello(sni=None, alpn=None, max_version=None):
    """A real ClientHello record from Python's TLS stack (what a browser-like client sends)."""
    ctx = client_context(alpn, max_version)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def hello_with_empty_extensions_and_trailing_bytes(sni):
    """A ClientHello whose extensions block says length 0 but bytes follow
    (the malformed hello of mtproto-proxy-erlang-notes.txt): decode_error."""
    record = client_hello(sni)
    body = record[9:]  # after record header (5) and handshake header (4)
    pos = 2 + 32
    pos += 1 + body[pos]                                            # session id
    pos += 2 + struct.unpack("!H", body[pos:pos + 2])[0]            # cipher suites
    pos += 1 + body[pos]                                            # compression
    body = body[:pos] + b"\x00\x00" + body[pos + 2:]                # extensions length 0, bytes remain
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return record[:3] + struct.pack("!H", len(handshake)) + handshake


def truncated_record(sni):
    """A record header announcing more bytes than are sent (the client then waits)."""
    record = client_hello(sni)
    return record[:len(record) // 2]


def wrong_record_version(sni):
    """A ClientHello in a record of version 0x0205 (no such TLS version)."""
    record = client_hello(sni)
    return record[:1] + b"\x02\x05" + record[3:]


def oversized_record(sni):
    """A record announcing 2^14 + 2049 bytes (above the TLS maximum), then the hello."""
    record = client_hello(sni)
    return record[:3] + struct.pack("!H", 16384 + 2049) + record[5:]


# --- observing ------------------------------------------------------------------------
def classify(data):
    """What the first bytes of an answer are."""
    if not data:
        return {"kind": "nothing"}
    if data[0] == RECORD_ALERT and len(data) >= 7:
        level, desc = bytearray(data[5:7])
        return {"kind": "tls_alert", "level": level, "alert": ALERTS.get(desc, "alert_%d" % desc)}
    if data[0] == RECORD_HANDSHAKE and len(data) >= 6:
        records, dummy = _faketls.split_records(data)
        if records and records[0][2][:1] == b"\x02":
            try:
                info = _faketls.parse_server_hello(records[0][2])
            except ValueError:
                return {"kind": "tls_handshake", "detail": "unparsable ServerHello"}
            return {"kind": "server_hello", "version": info["tls_version"],
                    "cipher": "0x%04x" % info["cipher_suite"], "hrr": info["hello_retry_request"]}
        return {"kind": "tls_handshake"}
    if data.startswith(b"HTTP/"):
        return {"kind": "http", "status": data.split(b"\r\n", 1)[0].decode("latin-1")[:64]}
    if data.startswith(b"SSH-"):
        return {"kind": "ssh_banner"}
    return {"kind": "other", "head": data[:8].hex()}


def _connect(endpoint, timeout):
    sock = socket.create_connection((endpoint["host"], endpoint["port"]), timeout=timeout)
    local, peer = sock.getsockname()[:2], sock.getpeername()[:2]
    preamble = proxy_header(endpoint.get("proxy_protocol"), local, peer)
    if preamble:
        sock.sendall(preamble)
    return sock


def receive(sock, deadline, idle=None, done=None, limit=1 << 20):
    """Bytes from ``sock`` until it closes, ``deadline`` (monotonic) passes, the peer is silent for ``idle``
    seconds once something came, ``done(data)`` is true, or ``limit`` bytes came. A TLS close without close_notify
    ends it like a FIN."""
    data = b""
    while len(data) < limit and time.monotonic() < deadline and not (done and done(data)):
        left = max(0.05, deadline - time.monotonic())
        sock.settimeout(min(idle, left) if idle and data else left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    return data


def observe_raw(endpoint, payload, wait=6.5, timeout=5.0):
    """Send ``payload`` and read until the server closes or ``wait`` seconds pass."""
    try:
        sock = _connect(endpoint, timeout)
    except OSError as exc:
        return {"first": {"kind": "connect_failed", "error": errno.errorcode.get(exc.errno, str(exc))},
                "close": "refused", "timing": "immediate"}
    data, close, closed_at = b"", "open", None
    try:
        if payload:
            sock.sendall(payload)
        sent_at = time.monotonic()
        deadline = sent_at + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                close, closed_at = "rst", time.monotonic()
                break
            if not chunk:
                close, closed_at = "fin", time.monotonic()
                break
            data += chunk
    except OSError as exc:
        close, closed_at = ("rst" if exc.errno in (errno.ECONNRESET, errno.EPIPE) else "error"), time.monotonic()
    finally:
        sock.close()
    return {"first": classify(data), "close": close,
            "timing": timing_class(None if closed_at is None else closed_at - sent_at)}


def observe_tls(endpoint, sni=None, alpn=None, max_version=None, timeout=5.0):
    """A full handshake with Python's TLS stack: version, cipher, ALPN, leaf certificate, or the failure."""
    ctx = client_context(alpn, max_version)
    try:
        sock = _connect(endpoint, timeout)
    except OSError as exc:
        return {"handshake": "connect_failed", "error": errno.errorcode.get(exc.errno, str(exc))}
    try:
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            return {"handshake": "ok", "version": tls.version(), "cipher": tls.cipher()[0],
                    "alpn": tls.selected_alpn_protocol(), "leaf_sha256": hashlib.sha256(der).hexdigest()[:16]}
    except ssl.SSLError as exc:
        return {"handshake": "failed", "reason": getattr(exc, "reason", None) or str(exc)[:80]}
    except OSError as exc:
        return {"handshake": "failed", "reason": errno.errorcode.get(exc.errno, str(exc))}
    finally:
        sock.close()


# --- the suite ------------------------------------------------------------------------
def suite(domain, replay_hello=None):
    """[(name, description, kind, stimulus)]; kind ``tls`` = full handshake, ``raw`` = bytes."""
    other = "www.wikipedia.org"
    probes = [
        ("magic_sni", "ClientHello with the proxy's SNI but without the secret", "tls", {"sni": domain}),
        ("random_sni", "ClientHello with a random SNI", "tls", {"sni": "r%s.example.net" % os.urandom(4).hex()}),
        ("no_sni", "ClientHello without SNI", "tls", {"sni": None}),
        ("other_site_sni", "ClientHello with the SNI of a well-known other site", "tls", {"sni": other}),
        ("tls12_only", "TLS 1.2-only client", "tls", {"sni": domain, "max_version": "TLSv1.2"}),
        ("alpn_h2", "ALPN offer h2, http/1.1", "tls", {"sni": domain, "alpn": ["h2", "http/1.1"]}),
        ("alpn_http11", "ALPN offer http/1.1 only", "tls", {"sni": domain, "alpn": ["http/1.1"]}),
        ("ext_len_zero_trailing", "ClientHello: extensions length 0 with bytes after it", "raw",
         {"payload": hello_with_empty_extensions_and_trailing_bytes(domain)}),
        ("truncated_record", "Half a ClientHello record, then silence", "raw", {"payload": truncated_record(domain)}),
        ("wrong_record_version", "ClientHello in a record of version 0x0205", "raw",
         {"payload": wrong_record_version(domain)}),
        ("oversized_record", "Record length above 2^14 + 2048", "raw", {"payload": oversized_record(domain)}),
        ("plain_http", "Plain HTTP request on the TLS port", "raw",
         {"payload": ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % domain).encode("ascii")}),
        ("ssh_banner", "SSH client banner on the TLS port", "raw", {"payload": b"SSH-2.0-OpenSSH_9.6\r\n"}),
        ("empty_connection", "Connect and send nothing", "raw", {"payload": b""}),
    ]
    if replay_hello is not None:
        probes.append(("replayed_faketls", "A FakeTLS ClientHello mtg already accepted, sent again", "raw",
                       {"payload": replay_hello}))
    return probes


def observe(endpoint, kind, stimulus, wait=6.5):
    if kind == "tls":
        return observe_tls(endpoint, **stimulus)
    return observe_raw(endpoint, stimulus["payload"], wait=wait)


def compare(public, backend):
    """Keys whose values differ between two observations."""
    keys = sorted(set(public) | set(backend))
    return [key for key in keys if public.get(key) != backend.get(key)]


def known_reason(known, name, differs):
    """The reason a difference is expected, or None.

    ``known[name]`` is a reason (any difference of that probe is expected) or
    ``{"fields": [...], "reason": ...}`` (only differences in those fields).
    """
    entry = (known or {}).get(name)
    if not entry or not differs:
        return None
    if isinstance(entry, dict):
        fields = entry.get("fields") or []
        if fields and not set(differs) <= set(fields):
            return None
        return entry.get("reason") or "listed as known"
    return str(entry)


def run_suite(public, backend, domain, replay_hello=None, only=None, wait=6.5, known=None, parallel=8):
    """Run every probe against both endpoints. Returns a list of result dicts (in suite order).

    Probes run ``parallel`` at a time, each against both endpoints at once: most
    raw probes wait up to ``wait`` seconds for a close, so one after the other
    the suite would take minutes.
    """
    chosen = [probe for probe in suite(domain, replay_hello) if not only or probe[0] in only]

    def both(probe):
        name, description, kind, stimulus = probe
        with ThreadPoolExecutor(max_workers=2) as pair:
            seen_public = pair.submit(observe, public, kind, stimulus, wait)
            seen_backend = pair.submit(observe, backend, kind, stimulus, wait)
            return name, description, seen_public.result(), seen_backend.result()

    with ThreadPoolExecutor(max_workers=max(1, int(parallel))) as pool:
        observed = list(pool.map(both, chosen))
    results = []
    for name, description, seen_public, seen_backend in observed:
        differs = compare(seen_public, seen_backend)
        results.append({"probe": name, "description": description, "public": seen_public, "backend": seen_backend,
                        "identical": not differs, "differs_in": differs,
                        "known_difference": known_reason(known, name, differs)})
    return results


def accepted_faketls_hello(endpoint, secret_key, domain, timeout=5.0):
    """Open a FakeTLS session with the secret (mtg accepts it) and return the ClientHello it used."""
    hello = _faketls.build_client_hello(secret_key, domain)
    sock = _connect(endpoint, timeout)
    try:
        sock.sendall(hello)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records, dummy = _faketls.split_records(data)
            complete, dummy_info, reason = _faketls.classify_server_response(records)
            if complete or reason:
                break
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        accepted = _faketls.verify_server_response(secret_key, _faketls.client_random_of(hello), data)
    finally:
        sock.close()
    return hello, accepted


def format_row(result):
    def short(seen):
        if "handshake" in seen:
            if seen["handshake"] != "ok":
                return "%s %s" % (seen["handshake"], seen.get("reason") or seen.get("error") or "")
            return "%s %s %s cert %s" % (seen["version"], seen["cipher"], seen["alpn"] or "-", seen["leaf_sha256"])
        first = seen["first"]
        text = first["kind"] + "".join(" %s" % first[k] for k in ("alert", "version", "status", "error") if k in first)
        return "%s, %s %s" % (text, seen["close"], seen["timing"])
    verdict = "identical" if result["identical"] else ("known difference" if result["known_difference"]
                                                       else "DIFFERENT (%s)" % ", ".join(result["differs_in"]))
    columns = (result["probe"], verdict, short(result["public"]), short(result["backend"]))
    return "%-22s %-16s public: %s | web alone: %s" % columns
