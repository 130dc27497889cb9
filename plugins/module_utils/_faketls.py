# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client side of the FakeTLS handshake spoken by the mtg v2 MTProto proxy.

Pure Python 3 standard library (this file is shipped to managed hosts that
only have ``python3``).  It is an independent implementation written against
the behaviour of mtg v2.2.8 (``mtglib/internal/tls/fake``):

Client -> proxy: one TLS record ``16 03 01 <len>`` carrying a ClientHello.
  The 32-byte client random is ``HMAC-SHA256(key, record_with_zero_random)``
  where the last 4 bytes are additionally XORed with the little-endian
  UNIX timestamp.  The SNI extension must contain the domain of the secret.
  The proxy checks the first 28 bytes, then that the timestamp is within
  ``tolerate-time-skewness`` (3 s by default) and, if anti-replay is on,
  that the session id was never seen.  Anything that fails is relayed
  unchanged to the fronting web server ("domain fronting").

Proxy -> client: three records back to back: ``16 03 03`` ServerHello
  (TLS 1.3 supported_versions + x25519 key_share, session id and the first
  non-GREASE cipher suite echoed), ``14 03 03 00 01 01`` ChangeCipherSpec and
  a single ``17 03 03`` ApplicationData record of random noise.  The server
  random is ``HMAC-SHA256(key, client_random + those_three_records)`` computed
  with the server random zeroed.

After that both directions carry opaque payload in ``17 03 03 <len>``
ApplicationData records (the proxy drops any other record type it reads).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import os
import socket
import struct
import time

# --- constants ---------------------------------------------------------------

RECORD_CHANGE_CIPHER_SPEC = 0x14
RECORD_ALERT = 0x15
RECORD_HANDSHAKE = 0x16
RECORD_APPLICATION_DATA = 0x17

HANDSHAKE_CLIENT_HELLO = 0x01
HANDSHAKE_SERVER_HELLO = 0x02

# mtg only accepts a ClientHello in records with the 3.1 record version and
# only accepts application data with the 3.3 record version.
RECORD_VERSION_CLIENT_HELLO = b"\x03\x01"
RECORD_VERSION = b"\x03\x03"
LEGACY_VERSION_TLS12 = b"\x03\x03"

RECORD_HEADER_LEN = 5
# record type (1) + record version (2) + record length (2)
# + handshake type (1) + handshake length (3) + legacy version (2)
RANDOM_OFFSET = 11
RANDOM_LEN = 32
TIMESTAMP_LEN = 4
SESSION_ID_LEN = 32

# mtg writes at most 16384 - 5 payload bytes per record; we do the same.
MAX_RECORD_PAYLOAD = 16384 - RECORD_HEADER_LEN
# Upper bound accepted when reading (TLS allows 2^14 + 2048 for ciphertext).
MAX_RECORD_READ = 16384 + 2048

# Size of the ClientHello handshake message we pad to (the record is 5 more,
# i.e. 517 bytes on the wire, like Chrome and the Telegram apps).
CLIENT_HELLO_PADDED_LEN = 512

# RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HELLO_RETRY_REQUEST_RANDOM = bytes(bytearray.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"))

STEP_CONNECT = "connect"
STEP_SEND_CLIENT_HELLO = "send_client_hello"
STEP_READ_SERVER_HELLO = "read_server_hello"
STEP_VERIFY_SERVER_HMAC = "verify_server_hmac"
STEP_DONE = "done"
STEPS = (STEP_CONNECT, STEP_SEND_CLIENT_HELLO, STEP_READ_SERVER_HELLO,
         STEP_VERIFY_SERVER_HMAC, STEP_DONE)

EXT_SERVER_NAME = 0x0000
EXT_STATUS_REQUEST = 0x0005
EXT_SUPPORTED_GROUPS = 0x000a
EXT_EC_POINT_FORMATS = 0x000b
EXT_SIGNATURE_ALGORITHMS = 0x000d
EXT_ALPN = 0x0010
EXT_SCT = 0x0012
EXT_PADDING = 0x0015
EXT_EXTENDED_MASTER_SECRET = 0x0017
EXT_COMPRESS_CERTIFICATE = 0x001b
EXT_SESSION_TICKET = 0x0023
EXT_SUPPORTED_VERSIONS = 0x002b
EXT_PSK_KEY_EXCHANGE_MODES = 0x002d
EXT_KEY_SHARE = 0x0033
EXT_RENEGOTIATION_INFO = 0xff01

GROUP_X25519 = 0x001d
GROUP_SECP256R1 = 0x0017
GROUP_SECP384R1 = 0x0018

CIPHER_SUITES = (
    0x1301, 0x1302, 0x1303,  # TLS 1.3 AES-128-GCM, AES-256-GCM, CHACHA20
    0xc02b, 0xc02f, 0xc02c, 0xc030,  # ECDHE-{ECDSA,RSA}-AES-GCM
    0xcca9, 0xcca8,  # ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305
    0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
)
SIGNATURE_ALGORITHMS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501,
                        0x0806, 0x0601)
ALPN_PROTOCOLS = (b"h2", b"http/1.1")

TLS_VERSION_NAMES = {
    0x0301: "TLSv1.0",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

ALERT_DESCRIPTIONS = {
    10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
    42: "bad_certificate", 47: "illegal_parameter", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name",
    120: "no_application_protocol",
}

FRONTING_ERROR = (
    "the server answered like a normal TLS server (domain fronting), not with a "
    "FakeTLS ServerHello authenticated by this secret: the secret is wrong, the "
    "SNI does not match the domain of the secret, the client clock differs from "
    "the server clock by more than mtg's tolerate-time-skewness, the ClientHello "
    "was a replay, or the request did not reach mtg at all (something else "
    "answers on this address)")


class FakeTLSError(Exception):
    """A FakeTLS step failed; ``step`` names the step (see ``STEPS``)."""

    def __init__(self, step, message, fronting=False):
        super(FakeTLSError, self).__init__(message)
        self.step = step
        self.message = message
        self.fronting = fronting


# --- small helpers -----------------------------------------------------------

def _u8(value):
    return struct.pack("!B", value)


def _u16(value):
    return struct.pack("!H", value)


def _u24(value):
    return struct.pack("!I", value)[1:]


def _vec8(data):
    return _u8(len(data)) + data


def _vec16(data):
    return _u16(len(data)) + data


def _xor(left, right):
    return bytes(bytearray(a ^ b for a, b in zip(bytearray(left), bytearray(right))))


def _extension(ext_type, body):
    return _u16(ext_type) + _vec16(body)


def _grease_values(random_fn, count):
    """Return ``count`` distinct RFC 8701 GREASE values (0x?a?a)."""
    values = []
    pool = list(range(16))
    seed = bytearray(random_fn(count))
    for idx in range(count):
        pick = pool.pop(seed[idx] % len(pool))
        values.append(0x0a0a + 0x1010 * pick)
    return values


def is_grease(value):
    """True for RFC 8701 GREASE code points (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return (value & 0x0f0f) == 0x0a0a and (value >> 8) == (value & 0xff)


# --- X25519 (RFC 7748), used for a genuine-looking key_share -----------------

_X25519_P = 2 ** 255 - 19
_X25519_A24 = 121665


def x25519(scalar, u_coordinate):
    """RFC 7748 X25519 scalar multiplication (small, constant-shape ladder)."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k_int = int.from_bytes(bytes(k), "little")
    x_1 = int.from_bytes(bytes(u_coordinate), "little") & ((1 << 255) - 1)
    x_2, z_2, x_3, z_3 = 1, 0, x_1, 1
    swap = 0
    p = _X25519_P
    for t in range(254, -1, -1):
        k_t = (k_int >> t) & 1
        swap ^= k_t
        if swap:
            x_2, x_3 = x_3, x_2
            z_2, z_3 = z_3, z_2
        swap = k_t
        a = (x_2 + z_2) % p
        aa = (a * a) % p
        b = (x_2 - z_2) % p
        bb = (b * b) % p
        e = (aa - bb) % p
        c = (x_3 + z_3) % p
        d = (x_3 - z_3) % p
        da = (d * a) % p
        cb = (c * b) % p
        x_3 = pow(da + cb, 2, p)
        z_3 = (x_1 * pow(da - cb, 2, p)) % p
        x_2 = (aa * bb) % p
        z_2 = (e * (aa + _X25519_A24 * e)) % p
    if swap:
        x_2, x_3 = x_3, x_2
        z_2, z_3 = z_3, z_2
    return ((x_2 * pow(z_2, p - 2, p)) % p).to_bytes(32, "little")


def x25519_public_key(private_key):
    """Public key for a 32-byte X25519 private key."""
    return x25519(private_key, b"\x09" + b"\x00" * 31)


# --- ClientHello ---------------------------------------------------------------

def _check_secret_key(secret_key):
    if not isinstance(secret_key, (bytes, bytearray)) or len(secret_key) != 16:
        raise ValueError("secret_key must be 16 bytes")
    return bytes(secret_key)


def _check_sni(sni):
    if isinstance(sni, bytes):
        sni = sni.decode("ascii")
    if not sni or len(sni) > 253:
        raise ValueError("sni must be a non-empty host name of at most 253 characters")
    try:
        return sni.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("sni must be ASCII (use the IDNA/punycode form)")


def build_client_hello_template(sni, random_fn=os.urandom):
    """Build the ClientHello record with an all-zero client random.

    Returns ``(record_bytes, session_id)``.  Randomness (session id, GREASE
    values, X25519 key) comes from ``random_fn(n) -> bytes`` in a fixed order,
    so a deterministic ``random_fn`` gives a deterministic record.
    """
    sni_bytes = _check_sni(sni)
    session_id = bytes(random_fn(SESSION_ID_LEN))
    grease = _grease_values(random_fn, 4)
    key_share_private = bytes(random_fn(32))
    key_share_public = x25519_public_key(key_share_private)

    cipher_suites = _u16(grease[0]) + b"".join(_u16(c) for c in CIPHER_SUITES)

    sni_entry = _u8(0) + _vec16(sni_bytes)  # host_name(0)
    extensions = [
        _extension(grease[1], b""),
        _extension(EXT_SERVER_NAME, _vec16(sni_entry)),
        _extension(EXT_EXTENDED_MASTER_SECRET, b""),
        _extension(EXT_RENEGOTIATION_INFO, b"\x00"),
        _extension(EXT_SUPPORTED_GROUPS, _vec16(
            _u16(grease[2]) + _u16(GROUP_X25519) + _u16(GROUP_SECP256R1)
            + _u16(GROUP_SECP384R1))),
        _extension(EXT_EC_POINT_FORMATS, _vec8(b"\x00")),
        _extension(EXT_SESSION_TICKET, b""),
        _extension(EXT_ALPN, _vec16(b"".join(_vec8(p) for p in ALPN_PROTOCOLS))),
        _extension(EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"),
        _extension(EXT_SIGNATURE_ALGORITHMS, _vec16(
            b"".join(_u16(s) for s in SIGNATURE_ALGORITHMS))),
        _extension(EXT_SCT, b""),
        _extension(EXT_KEY_SHARE, _vec16(
            _u16(grease[2]) + _vec16(b"\x00")
            + _u16(GROUP_X25519) + _vec16(key_share_public))),
        _extension(EXT_PSK_KEY_EXCHANGE_MODES, _vec8(b"\x01")),  # psk_dhe_ke
        _extension(EXT_SUPPORTED_VERSIONS, _vec8(
            _u16(grease[3]) + b"\x03\x04" + b"\x03\x03")),
        _extension(EXT_COMPRESS_CERTIFICATE, _vec8(_u16(0x0002))),  # brotli
        _extension(grease[3], b"\x00"),
    ]

    def assemble(exts):
        body = (LEGACY_VERSION_TLS12 + b"\x00" * RANDOM_LEN + _vec8(session_id)
                + _vec16(cipher_suites) + _vec8(b"\x00")  # null compression
                + _vec16(b"".join(exts)))
        return _u8(HANDSHAKE_CLIENT_HELLO) + _u24(len(body)) + body

    handshake = assemble(extensions)
    pad_len = CLIENT_HELLO_PADDED_LEN - len(handshake) - 4
    if pad_len >= 0:
        handshake = assemble(extensions + [_extension(EXT_PADDING, b"\x00" * pad_len)])

    record = _u8(RECORD_HANDSHAKE) + RECORD_VERSION_CLIENT_HELLO + _vec16(handshake)
    return record, session_id


def compute_client_random(secret_key, zeroed_record, timestamp):
    """Client random as mtg expects it for a record whose random is zeroed."""
    secret_key = _check_secret_key(secret_key)
    digest = hmac.new(secret_key, zeroed_record, hashlib.sha256).digest()
    stamp = struct.pack("<I", int(timestamp) & 0xffffffff)
    return digest[:RANDOM_LEN - TIMESTAMP_LEN] + _xor(digest[RANDOM_LEN - TIMESTAMP_LEN:], stamp)


def build_client_hello(secret_key, sni, *, random_fn=os.urandom, now=time.time):
    """Return the full FakeTLS ClientHello record (bytes) for ``secret_key``/``sni``."""
    secret_key = _check_secret_key(secret_key)
    template, dummy = build_client_hello_template(sni, random_fn=random_fn)
    client_random = compute_client_random(secret_key, template, now())
    return template[:RANDOM_OFFSET] + client_random + template[RANDOM_OFFSET + RANDOM_LEN:]


def client_random_of(client_hello):
    """The 32-byte client random of a ClientHello record."""
    return bytes(client_hello[RANDOM_OFFSET:RANDOM_OFFSET + RANDOM_LEN])


def parse_client_hello(record):
    """Parse a single-record ClientHello; returns a dict of its fields."""
    record = bytes(record)
    if len(record) < RECORD_HEADER_LEN + 4 or record[0] != RECORD_HANDSHAKE:
        raise ValueError("not a handshake record")
    if record[1:3] != RECORD_VERSION_CLIENT_HELLO:
        raise ValueError("ClientHello record version must be 3.1")
    (rec_len,) = struct.unpack("!H", record[3:5])
    payload = record[5:]
    if len(payload) != rec_len:
        raise ValueError("record length mismatch")
    if payload[0] != HANDSHAKE_CLIENT_HELLO:
        raise ValueError("not a ClientHello")
    hs_len = struct.unpack("!I", b"\x00" + payload[1:4])[0]
    body = payload[4:]
    if len(body) != hs_len:
        raise ValueError("handshake length mismatch")
    legacy_version, random, session_id, pos = _hello_head(body)
    (cs_len,) = struct.unpack("!H", body[pos:pos + 2])
    pos += 2
    cipher_suites = [struct.unpack("!H", body[pos + i:pos + i + 2])[0]
                     for i in range(0, cs_len, 2)]
    pos += cs_len
    comp_len = body[pos]
    pos += 1 + comp_len
    (ext_total,) = struct.unpack("!H", body[pos:pos + 2])
    pos += 2
    extensions = _parse_extensions(body[pos:pos + ext_total])
    if pos + ext_total != len(body):
        raise ValueError("trailing bytes after extensions")
    sni = []
    for ext_type, ext_body in extensions:
        if ext_type != EXT_SERVER_NAME:
            continue
        (list_len,) = struct.unpack("!H", ext_body[:2])
        names = ext_body[2:2 + list_len]
        npos = 0
        while npos < len(names):
            name_type = names[npos]
            (name_len,) = struct.unpack("!H", names[npos + 1:npos + 3])
            if name_type == 0:
                sni.append(names[npos + 3:npos + 3 + name_len].decode("ascii"))
            npos += 3 + name_len
    return {
        "legacy_version": legacy_version,
        "random": random,
        "session_id": session_id,
        "cipher_suites": cipher_suites,
        "extensions": extensions,
        "sni": sni,
    }


def check_client_hello(record, secret_key, now=None, tolerance=None):
    """Server-side check, as mtg does it; returns the embedded UNIX timestamp.

    Raises ``ValueError`` when the digest does not match or, if ``now`` and
    ``tolerance`` (seconds) are given, when the timestamp is out of range.
    Useful for tests of :func:`build_client_hello`.
    """
    secret_key = _check_secret_key(secret_key)
    record = bytes(record)
    parse_client_hello(record)
    random = client_random_of(record)
    zeroed = record[:RANDOM_OFFSET] + b"\x00" * RANDOM_LEN + record[RANDOM_OFFSET + RANDOM_LEN:]
    digest = hmac.new(secret_key, zeroed, hashlib.sha256).digest()
    mixed = _xor(digest, random)
    if not hmac.compare_digest(mixed[:RANDOM_LEN - TIMESTAMP_LEN],
                               b"\x00" * (RANDOM_LEN - TIMESTAMP_LEN)):
        raise ValueError("incorrect client random (HMAC mismatch)")
    (timestamp,) = struct.unpack("<I", mixed[RANDOM_LEN - TIMESTAMP_LEN:])
    if now is not None and tolerance is not None and abs(now - timestamp) > tolerance:
        raise ValueError("timestamp %d is outside the tolerated skew" % timestamp)
    return timestamp


# --- records and the server answer ------------------------------------------------

def _parse_extensions(data):
    extensions = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("truncated extension header")
        ext_type, ext_len = struct.unpack("!HH", data[pos:pos + 4])
        body = data[pos + 4:pos + 4 + ext_len]
        if len(body) != ext_len:
            raise ValueError("truncated extension 0x%04x" % ext_type)
        extensions.append((ext_type, body))
        pos += 4 + ext_len
    return extensions


def split_records(data):
    """Split bytes into complete TLS records.

    Returns ``(records, rest)`` where ``records`` is a list of
    ``(type, version_bytes, payload)`` and ``rest`` the incomplete tail.
    """
    data = bytes(data)
    records = []
    pos = 0
    while len(data) - pos >= RECORD_HEADER_LEN:
        rtype = data[pos]
        version = data[pos + 1:pos + 3]
        (length,) = struct.unpack("!H", data[pos + 3:pos + 5])
        end = pos + RECORD_HEADER_LEN + length
        if end > len(data):
            break
        records.append((rtype, version, data[pos + RECORD_HEADER_LEN:end]))
        pos = end
    return records, data[pos:]


def _hello_head(body):
    """legacy_version (2 bytes), random, session_id and the offset after them:
    the layout ClientHello and ServerHello bodies share."""
    pos = 2 + RANDOM_LEN
    sid_len = body[pos]
    session_id = body[pos + 1:pos + 1 + sid_len]
    return body[0:2], body[2:pos], session_id, pos + 1 + sid_len


def parse_server_hello(payload):
    """Parse a ServerHello handshake message (the payload of a 0x16 record)."""
    payload = bytes(payload)
    if len(payload) < 4 or payload[0] != HANDSHAKE_SERVER_HELLO:
        raise ValueError("handshake record does not start with a ServerHello")
    hs_len = struct.unpack("!I", b"\x00" + payload[1:4])[0]
    body = payload[4:4 + hs_len]
    if len(body) != hs_len or hs_len < 2 + RANDOM_LEN + 1:
        raise ValueError("truncated ServerHello")
    version_bytes, random, session_id, pos = _hello_head(body)
    (legacy_version,) = struct.unpack("!H", version_bytes)
    if pos + 3 > len(body):
        raise ValueError("truncated ServerHello")
    (cipher_suite,) = struct.unpack("!H", body[pos:pos + 2])
    pos += 2
    compression = body[pos]
    pos += 1
    extensions = []
    if pos + 2 <= len(body):
        (ext_total,) = struct.unpack("!H", body[pos:pos + 2])
        extensions = _parse_extensions(body[pos + 2:pos + 2 + ext_total])
    version = legacy_version
    for ext_type, ext_body in extensions:
        if ext_type == EXT_SUPPORTED_VERSIONS and len(ext_body) == 2:
            (version,) = struct.unpack("!H", ext_body)
    return {
        "legacy_version": legacy_version,
        "random": random,
        "session_id": session_id,
        "cipher_suite": cipher_suite,
        "compression": compression,
        "extensions": extensions,
        "version": version,
        "tls_version": TLS_VERSION_NAMES.get(version, "0x%04x" % version),
        "hello_retry_request": random == HELLO_RETRY_REQUEST_RANDOM,
    }


def compute_server_random(secret_key, client_random, server_response):
    """The server random mtg puts into ``server_response`` (random zeroed or not)."""
    secret_key = _check_secret_key(secret_key)
    response = bytes(server_response)
    zeroed = response[:RANDOM_OFFSET] + b"\x00" * RANDOM_LEN + response[RANDOM_OFFSET + RANDOM_LEN:]
    return hmac.new(secret_key, bytes(client_random) + zeroed, hashlib.sha256).digest()


def verify_server_response(secret_key, client_random, server_response):
    """True if ``server_response`` (ServerHello + CCS + ApplicationData records,
    exactly as received) carries the HMAC of ``secret_key``."""
    response = bytes(server_response)
    if len(response) < RANDOM_OFFSET + RANDOM_LEN:
        return False
    expected = compute_server_random(secret_key, client_random, response)
    return hmac.compare_digest(expected, response[RANDOM_OFFSET:RANDOM_OFFSET + RANDOM_LEN])


def classify_server_response(records):
    """Check the shape of the first records of an answer.

    ``records`` is a list of ``(type, version, payload)``.  Returns
    ``(complete, info, reason)``: ``complete`` is True once a FakeTLS-shaped
    answer (ServerHello, ChangeCipherSpec, ApplicationData) has been seen;
    ``reason`` is a text when the answer cannot be a FakeTLS answer (so there
    is no point in reading further); ``info`` is the parsed ServerHello.
    """
    info = None
    for idx, (rtype, version, payload) in enumerate(records):
        if rtype == RECORD_ALERT:
            level, desc = (bytearray(payload) + bytearray(2))[:2]
            return False, info, "server sent TLS alert %s (%d, level %d)" % (
                ALERT_DESCRIPTIONS.get(desc, "unknown"), desc, level)
        if idx == 0:
            if rtype != RECORD_HANDSHAKE:
                return False, info, "first record is of type 0x%02x, not a handshake" % rtype
            try:
                info = parse_server_hello(payload)
            except ValueError as exc:
                return False, info, str(exc)
            if version != RECORD_VERSION:
                return False, info, "ServerHello record version is not 3.3"
            if info["hello_retry_request"]:
                return False, info, "server sent a HelloRetryRequest"
            if info["version"] != 0x0304:
                return False, info, "server negotiated %s, not TLSv1.3" % info["tls_version"]
        elif idx == 1:
            if rtype != RECORD_CHANGE_CIPHER_SPEC or payload != b"\x01":
                return False, info, "second record is not a ChangeCipherSpec"
        elif idx == 2:
            if rtype != RECORD_APPLICATION_DATA:
                return False, info, "third record is not ApplicationData"
            return True, info, None
    return False, info, None


# --- application data --------------------------------------------------------------

def wrap_application_data(data, max_payload=MAX_RECORD_PAYLOAD):
    """Wrap ``data`` into ``17 03 03 <len>`` records (as mtg's FakeTLS conn)."""
    data = bytes(data)
    out = []
    for pos in range(0, len(data), max_payload):
        chunk = data[pos:pos + max_payload]
        out.append(_u8(RECORD_APPLICATION_DATA) + RECORD_VERSION + _vec16(chunk))
    return b"".join(out)


def unwrap_application_data(data):
    """Extract payload from complete records of ``data``.

    Returns ``(payload, rest)``; records of other types are skipped like mtg
    does; ``rest`` is the incomplete tail to prepend to the next read.
    Raises ``ValueError`` on a record version other than 3.3.
    """
    records, rest = split_records(data)
    out = []
    for rtype, version, payload in records:
        if version != RECORD_VERSION:
            raise ValueError("unexpected record version %r" % (version,))
        if rtype == RECORD_APPLICATION_DATA:
            out.append(payload)
    return b"".join(out), rest


class FakeTLSConnection:
    """An established FakeTLS connection: send/recv opaque payload."""

    def __init__(self, sock, result, client_random):
        self.sock = sock
        self.result = result
        self.client_random = client_random
        self._raw = b""
        self._plain = b""

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def sendall(self, data):
        self.sock.sendall(wrap_application_data(data))

    def recv(self, bufsize=65536):
        """Up to ``bufsize`` payload bytes; ``b""`` on EOF."""
        while not self._plain:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            payload, self._raw = unwrap_application_data(self._raw + chunk)
            self._plain += payload
        data, self._plain = self._plain[:bufsize], self._plain[bufsize:]
        return data

    def recv_exact(self, size):
        parts = []
        missing = size
        while missing > 0:
            data = self.recv(missing)
            if not data:
                raise EOFError("connection closed after %d of %d bytes" % (size - missing, size))
            parts.append(data)
            missing -= len(data)
        return b"".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- network ------------------------------------------------------------------------

def proxy_header(version, source, destination):
    """PROXY protocol header (``v1``/``v2``) for a TCP connection, or b"" for ``none``."""
    if version in (None, "none", False):
        return b""
    (src_host, src_port), (dst_host, dst_port) = source, destination
    v6 = ":" in src_host
    if version == "v1":
        return ("PROXY %s %s %s %d %d\r\n" % ("TCP6" if v6 else "TCP4", src_host, dst_host, src_port,
                                              dst_port)).encode("ascii")
    if version != "v2":
        raise ValueError("PROXY version must be none, v1 or v2, not %r" % (version,))
    family = socket.AF_INET6 if v6 else socket.AF_INET
    addresses = (socket.inet_pton(family, src_host) + socket.inet_pton(family, dst_host)
                 + struct.pack("!HH", src_port, dst_port))
    return (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21" + (b"\x21" if v6 else b"\x11")
            + struct.pack("!H", len(addresses)) + addresses)


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def _recv_exact(sock, size, deadline):
    buf = b""
    while len(buf) < size:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise EOFError("connection closed by the server after %d bytes" % len(buf))
        buf += chunk
    return buf


def _read_record(sock, deadline):
    header = _recv_exact(sock, RECORD_HEADER_LEN, deadline)
    if header[1] != 3:
        raise ValueError("not a TLS record (first bytes %s)" % header.hex())
    (length,) = struct.unpack("!H", header[3:5])
    if length > MAX_RECORD_READ:
        raise ValueError("TLS record too large (%d bytes)" % length)
    return header + _recv_exact(sock, length, deadline)


def _connect(host, port, family, deadline):
    infos = socket.getaddrinfo(host, port, family or socket.AF_UNSPEC, socket.SOCK_STREAM)
    last_error = None
    for fam, socktype, proto, dummy, sockaddr in infos:
        sock = socket.socket(fam, socktype, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, sockaddr
        except (OSError, socket.timeout) as exc:
            last_error = exc
            sock.close()
    raise last_error or OSError("no address for %s" % host)


def _new_result(host, port, sni):
    return {
        "ok": False,
        "step": STEP_CONNECT,
        "error": None,
        "host": host,
        "port": port,
        "sni": sni,
        "peer": None,
        "server_hello_len": 0,
        "elapsed_ms": 0.0,
        "tls_version": None,
        "cipher_suite": None,
        "fronting_suspected": False,
    }


def open_faketls(host, port, secret_key, sni, timeout=5.0, family=None,
                 random_fn=os.urandom, now=time.time, proxy_protocol=None):
    """Connect and perform the FakeTLS handshake.

    Returns ``(connection, result)``: ``connection`` is a
    :class:`FakeTLSConnection` ready for payload when ``result["ok"]``,
    otherwise ``None`` (the socket is closed).  ``result`` is the dict
    described in :func:`selftest`.  ``family`` may be ``socket.AF_INET`` or
    ``socket.AF_INET6`` to force the address family.  ``proxy_protocol``
    (``v1``/``v2``) sends a PROXY header first, as a router would to an mtg
    whose listener requires one.
    """
    secret_key = _check_secret_key(secret_key)
    result = _new_result(host, port, sni)
    started = time.monotonic()
    deadline = started + float(timeout)
    sock = None
    answer = b""
    try:
        result["step"] = STEP_CONNECT
        try:
            sock, sockaddr = _connect(host, port, family, deadline)
        except (OSError, socket.timeout) as exc:
            raise FakeTLSError(STEP_CONNECT, "cannot connect to %s port %s: %s" % (host, port, exc))
        result["peer"] = "[%s]:%s" % (sockaddr[0], sockaddr[1]) if ":" in sockaddr[0] \
            else "%s:%s" % (sockaddr[0], sockaddr[1])

        result["step"] = STEP_SEND_CLIENT_HELLO
        preamble = proxy_header(proxy_protocol, sock.getsockname()[:2], sockaddr[:2])
        hello = build_client_hello(secret_key, sni, random_fn=random_fn, now=now)
        client_random = client_random_of(hello)
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(preamble + hello)
        except (OSError, socket.timeout) as exc:
            raise FakeTLSError(STEP_SEND_CLIENT_HELLO, "cannot send the ClientHello: %s" % exc)

        result["step"] = STEP_READ_SERVER_HELLO
        records = []
        info = None
        for dummy in range(3):
            try:
                raw = _read_record(sock, deadline)
            except socket.timeout:
                raise FakeTLSError(
                    STEP_READ_SERVER_HELLO,
                    "timed out after %.1fs waiting for the server answer (%d bytes received)"
                    % (float(timeout), len(answer)))
            except EOFError as exc:
                raise FakeTLSError(
                    STEP_READ_SERVER_HELLO,
                    "%s%s: mtg closes the connection like this when it rejects a ClientHello "
                    "and cannot reach its domain-fronting target, otherwise the service on "
                    "this port is not a TLS server" % (exc, "" if not answer else " (partial answer)"))
            except (OSError, ValueError) as exc:
                raise FakeTLSError(STEP_READ_SERVER_HELLO, "cannot read the server answer: %s" % exc)
            answer += raw
            result["server_hello_len"] = len(answer)
            records.append((bytearray(raw)[0], raw[1:3], raw[RECORD_HEADER_LEN:]))
            complete, info, reason = classify_server_response(records)
            if info is not None:
                result["tls_version"] = info["tls_version"]
                result["cipher_suite"] = "0x%04x" % info["cipher_suite"]
            if reason is not None:
                if records[0][0] == RECORD_ALERT:
                    raise FakeTLSError(STEP_READ_SERVER_HELLO,
                                       "%s; %s" % (reason, FRONTING_ERROR), fronting=True)
                if info is None:
                    raise FakeTLSError(STEP_READ_SERVER_HELLO,
                                       "the answer is not a TLS ServerHello: %s" % reason)
                result["step"] = STEP_VERIFY_SERVER_HMAC
                raise FakeTLSError(STEP_VERIFY_SERVER_HMAC, "%s (%s)" % (FRONTING_ERROR, reason),
                                   fronting=True)
            if complete:
                break

        result["step"] = STEP_VERIFY_SERVER_HMAC
        if not verify_server_response(secret_key, client_random, answer):
            raise FakeTLSError(STEP_VERIFY_SERVER_HMAC, FRONTING_ERROR, fronting=True)
        if info["session_id"] != hello[RANDOM_OFFSET + RANDOM_LEN + 1:
                                       RANDOM_OFFSET + RANDOM_LEN + 1 + SESSION_ID_LEN]:
            raise FakeTLSError(STEP_VERIFY_SERVER_HMAC,
                               "the ServerHello verifies but does not echo our session id")

        result["step"] = STEP_DONE
        result["ok"] = True
        sock.settimeout(None)
        conn = FakeTLSConnection(sock, result, client_random)
        sock = None
        return conn, result
    except FakeTLSError as exc:
        result["step"] = exc.step
        result["error"] = exc.message
        result["fronting_suspected"] = exc.fronting
        return None, result
    finally:
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000.0, 3)
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def selftest(host, port, secret_key, sni, timeout=5.0, family=None, proxy_protocol=None):
    """Connect to ``host:port``, do the FakeTLS handshake and close.

    Returns ``{"ok", "step", "error", "server_hello_len", "elapsed_ms",
    "tls_version", "cipher_suite", "peer", "host", "port", "sni",
    "fronting_suspected"}``; ``step`` is the last step reached, one of
    ``STEPS``; on success ``ok`` is True and ``step`` is ``"done"``.
    """
    conn, result = open_faketls(host, port, secret_key, sni, timeout=timeout, family=family,
                                proxy_protocol=proxy_protocol)
    if conn is not None:
        conn.close()
    return result
