# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""End-to-end echo client for an mtg proxy in front of ``dcsim.py``.

Does what a Telegram client does towards mtg: the FakeTLS handshake (reusing
``plugins/module_utils/_faketls.py``), then the client side of obfuscated2
keyed with the proxy secret (``key = sha256(frame_key + secret)``, protocol
tag ``dddddddd`` = padded intermediate, the only one mtg accepts), carried in
TLS ApplicationData records.  It then sends ``--payload-size`` random bytes
as padded-intermediate packets, reads the echo produced by ``dcsim.py``
through mtg and exits 0 only if the byte stream comes back identical.

Prints one JSON line, e.g.::

    {"ok": true, "sent": 100000, "received": 100000, "handshake": {...}, ...}

    python3 mtg_echo.py --host 127.0.0.1 --port 3443 --secret ee... \
        --payload-size 100000 [--dc 2] [--sni example.com] [--timeout 30]

Importable: :func:`run_echo` returns the same dict.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import socket
import struct
import sys
import threading
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FAKETLS = os.path.join(HERE, "..", "..", "plugins", "module_utils", "_faketls.py")

FRAME_LEN = 64
TAG_PADDED_INTERMEDIATE = b"\xdd\xdd\xdd\xdd"
# First 4 bytes a client must avoid (they look like other transports / HTTP).
FORBIDDEN_PREFIXES = (
    b"HEAD", b"POST", b"GET ", b"OPTI", b"\x16\x03\x01\x02",
    b"\xdd\xdd\xdd\xdd", b"\xee\xee\xee\xee",
)
MAX_PACKET = 8192


def load_faketls(path=None):
    """Import ``_faketls.py`` from a path (it is stdlib-only)."""
    path = os.path.abspath(path or DEFAULT_FAKETLS)
    spec = importlib.util.spec_from_file_location("tgproxy_faketls", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_secret(text):
    """(key, domain) of a secret, read by the collection's topology model."""
    path = os.path.join(HERE, "..", "..", "plugins", "module_utils", "topology.py")
    spec = importlib.util.spec_from_file_location("tgproxy_topology", path)
    topology = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(topology)
    secret = topology.Secret.parse(text)
    return secret.key, secret.domain


def ctr(key, iv):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


def client_obfuscated2(secret_key, dc_id, random_fn=os.urandom):
    """Client side of obfuscated2 towards an MTProto proxy.

    Returns ``(frame_to_send, encryptor, decryptor)``; the encryptor has
    already consumed the 64 frame bytes.
    """
    for dummy in range(1000):
        frame = bytearray(random_fn(FRAME_LEN))
        if frame[0] == 0xef or bytes(frame[:4]) in FORBIDDEN_PREFIXES:
            continue
        if frame[4:8] == b"\x00\x00\x00\x00":
            continue
        break
    else:  # pragma: no cover - needs a broken random source
        raise RuntimeError("cannot generate an obfuscated2 frame")
    frame[56:60] = TAG_PADDED_INTERMEDIATE
    frame[60:62] = struct.pack("<h", dc_id)
    frame = bytes(frame)
    encryptor = ctr(hashlib.sha256(frame[8:40] + secret_key).digest(), frame[40:56])
    reverse = frame[8:56][::-1]
    decryptor = ctr(hashlib.sha256(reverse[:32] + secret_key).digest(), reverse[32:48])
    encrypted = encryptor.update(frame)
    return frame[:56] + encrypted[56:], encryptor, decryptor


def frame_packets(payload, random_fn=os.urandom):
    """Padded-intermediate framing: ``<len LE32> <data> <0..15 random pad>``."""
    out = []
    for pos in range(0, len(payload), MAX_PACKET):
        chunk = payload[pos:pos + MAX_PACKET]
        pad = random_fn(bytearray(random_fn(1))[0] % 16)
        out.append(struct.pack("<I", len(chunk) + len(pad)) + chunk + pad)
    return b"".join(out)


def run_echo(host, port, secret, payload_size, dc_id=2, sni=None, timeout=30.0,
             faketls_path=None, family=None):
    faketls = load_faketls(faketls_path)
    key, domain = parse_secret(secret)
    sni = sni or domain
    summary = {"ok": False, "host": host, "port": port, "sni": sni, "dc": dc_id,
               "payload_size": payload_size, "sent": 0, "received": 0,
               "error": None, "handshake": None, "elapsed_ms": 0.0}
    started = time.monotonic()
    conn, result = faketls.open_faketls(host, port, key, sni, timeout=min(timeout, 10.0),
                                        family=family)
    summary["handshake"] = result
    if conn is None:
        summary["error"] = "FakeTLS handshake failed at %s: %s" % (result["step"], result["error"])
        return summary
    try:
        frame, encryptor, decryptor = client_obfuscated2(key, dc_id)
        payload = os.urandom(payload_size)
        stream = frame_packets(payload)
        deadline = started + timeout
        conn.settimeout(max(1.0, deadline - time.monotonic()))
        conn.sendall(frame)

        send_error = []

        def sender():
            try:
                step = 16384 - 5
                for pos in range(0, len(stream), step):
                    if time.monotonic() > deadline:
                        raise socket.timeout("send deadline")
                    conn.sendall(encryptor.update(stream[pos:pos + step]))
            except Exception as exc:  # reported by the main thread
                send_error.append(exc)

        thread = threading.Thread(target=sender, name="mtg-echo-sender", daemon=True)
        thread.start()
        received = []
        got = 0
        while got < len(stream):
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out after %d of %d bytes" % (got, len(stream)))
            conn.settimeout(left)
            data = conn.recv(65536)
            if not data:
                raise EOFError("connection closed after %d of %d bytes" % (got, len(stream)))
            received.append(decryptor.update(data))
            got += len(data)
        thread.join(max(0.1, deadline - time.monotonic()))
        if send_error:
            raise send_error[0]
        echoed = b"".join(received)
        summary["sent"] = len(stream)
        summary["received"] = len(echoed)
        if echoed != stream:
            first = next(i for i in range(len(stream)) if echoed[i] != stream[i])
            summary["error"] = "echo differs from what was sent (first difference at byte %d)" % first
            return summary
        # Unframe and compare the application payload as well.
        pos, parts = 0, []
        while pos < len(echoed):
            (length,) = struct.unpack("<I", echoed[pos:pos + 4])
            parts.append(echoed[pos + 4:pos + 4 + length])
            pos += 4 + length
        if not _payload_matches(parts, payload):
            summary["error"] = "packet payloads differ after unframing (%d packets)" % len(parts)
            return summary
        summary["ok"] = True
        summary["packets"] = len(parts)
        return summary
    except (OSError, EOFError, ValueError, socket.timeout) as exc:
        summary["error"] = "%s: %s" % (exc.__class__.__name__, exc)
        return summary
    finally:
        conn.close()
        summary["elapsed_ms"] = round((time.monotonic() - started) * 1000.0, 1)


def _payload_matches(packets, payload):
    pos = 0
    for packet in packets:
        chunk = payload[pos:pos + MAX_PACKET]
        if packet[:len(chunk)] != chunk or len(packet) - len(chunk) > 15:
            return False
        pos += len(chunk)
    return pos == len(payload)


def main(argv=None):
    parser = argparse.ArgumentParser(description="mtg FakeTLS + obfuscated2 echo test client")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--secret", required=True, help="ee... hex or base64url secret")
    parser.add_argument("--payload-size", type=int, default=100000)
    parser.add_argument("--dc", type=int, default=2, help="DC id put into the frame (default 2)")
    parser.add_argument("--sni", default=None, help="default: the domain of the secret")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--family", choices=["any", "ipv4", "ipv6"], default="any")
    parser.add_argument("--faketls", default=None,
                        help="path to _faketls.py (default: the collection's copy)")
    args = parser.parse_args(argv)
    family = {"any": None, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[args.family]
    summary = run_echo(args.host, args.port, args.secret, args.payload_size, dc_id=args.dc,
                       sni=args.sni, timeout=args.timeout, faketls_path=args.faketls,
                       family=family)
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
