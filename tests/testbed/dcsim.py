# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Telegram DC simulator for the tgproxy.stealth test bed.

One asyncio process that is a SOCKS5 server (no auth, or user/password
auth).  mtg (``[network] proxies = ["socks5://HOST:PORT"]``) sends every
Telegram DC dial through it.  Whatever destination is asked for, the server
answers "succeeded" and then itself plays the Telegram DC: it reads the
64-byte obfuscated2 handshake frame mtg sends towards the DC, derives the
AES-256-CTR keys the way a DC does (no proxy secret on this leg), checks the
protocol tag, then decrypts whatever mtg relays and echoes the same plaintext
back, encrypted in the DC -> client direction.

It never dials anything.  Each event is one JSON line on stdout, e.g.::

    {"event": "session_start", "session": 1, "dest": "149.154.167.51:443", ...}
    {"event": "dc_handshake", "session": 1, "dc": 2, "tag": "dddddddd", ...}
    {"event": "session_end", "session": 1, "bytes_echoed": 100400, ...}

With ``--state-file PATH`` a JSON summary (session counters, last sessions)
is rewritten atomically after every event so that tests can assert that the
DC was reached.  ``--exit-after SECONDS`` stops the process on its own.

    python3 dcsim.py --listen 127.0.0.1:1080 [--listen [::1]:1080]
                     [--auth user:password] [--state-file /run/dcsim.json]
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SOCKS_VERSION = 5
AUTH_NONE = 0x00
AUTH_USERPASS = 0x02
AUTH_NO_ACCEPTABLE = 0xff
CMD_CONNECT = 0x01
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04
REP_SUCCEEDED = 0x00
REP_COMMAND_NOT_SUPPORTED = 0x07
REP_ATYP_NOT_SUPPORTED = 0x08

FRAME_LEN = 64
PROTOCOL_TAGS = {
    b"\xef\xef\xef\xef": "abridged",
    b"\xee\xee\xee\xee": "intermediate",
    b"\xdd\xdd\xdd\xdd": "padded-intermediate",
}

HANDSHAKE_TIMEOUT = 30.0
IDLE_TIMEOUT = 300.0
READ_CHUNK = 65536


def ctr(key, iv):
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


def dc_side_ciphers(frame):
    """Key schedule of a Telegram DC for an obfuscated2 frame without secret.

    Returns ``(decryptor, encryptor, plain_frame)``: the decryptor has already
    consumed the 64 frame bytes, exactly like the sender's encryptor did.
    """
    recv = ctr(frame[8:40], frame[40:56])
    reverse = frame[8:56][::-1]
    send = ctr(reverse[:32], reverse[32:48])
    plain = recv.update(frame)
    return recv, send, plain


class State:
    def __init__(self, path):
        self.path = path
        self.started = time.time()
        self.sessions = 0
        self.active = 0
        self.handshakes_ok = 0
        self.handshakes_failed = 0
        self.bytes_echoed = 0
        self.last = []

    def emit(self, event, **fields):
        line = {"ts": round(time.time(), 3), "event": event}
        line.update(fields)
        sys.stdout.write(json.dumps(line, sort_keys=True) + "\n")
        sys.stdout.flush()
        if event == "session_end":
            self.last.append(fields)
            del self.last[:-20]
        self.save()

    def save(self):
        if not self.path:
            return
        data = {
            "pid": os.getpid(),
            "started": self.started,
            "sessions": self.sessions,
            "active": self.active,
            "handshakes_ok": self.handshakes_ok,
            "handshakes_failed": self.handshakes_failed,
            "bytes_echoed": self.bytes_echoed,
            "last_sessions": self.last,
        }
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        with open(tmp, "w") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self.path)


class SocksError(Exception):
    pass


class DCError(Exception):
    pass


async def socks5_handshake(reader, writer, auth):
    """Server side of SOCKS5 (RFC 1928/1929) up to the CONNECT reply.

    Returns the requested destination as ``host:port`` text.
    """
    version, nmethods = await reader.readexactly(2)
    if version != SOCKS_VERSION:
        raise SocksError("not SOCKS5 (version byte %d)" % version)
    methods = await reader.readexactly(nmethods)
    if auth is None and AUTH_NONE in methods:
        method = AUTH_NONE
    elif AUTH_USERPASS in methods:
        method = AUTH_USERPASS
    else:
        writer.write(bytes([SOCKS_VERSION, AUTH_NO_ACCEPTABLE]))
        await writer.drain()
        raise SocksError("no acceptable auth method in %s" % list(methods))
    writer.write(bytes([SOCKS_VERSION, method]))
    await writer.drain()
    user = None
    if method == AUTH_USERPASS:
        sub_version, ulen = await reader.readexactly(2)
        user = (await reader.readexactly(ulen)).decode("utf-8", "replace")
        (plen,) = await reader.readexactly(1)
        password = (await reader.readexactly(plen)).decode("utf-8", "replace")
        good = auth is None or (user, password) == auth
        writer.write(bytes([1, 0 if good else 1]))
        await writer.drain()
        if not good:
            raise SocksError("bad credentials for user %r" % user)

    version, cmd, dummy, atyp = await reader.readexactly(4)
    if atyp == ATYP_IPV4:
        host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
    elif atyp == ATYP_IPV6:
        host = "[%s]" % socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
    elif atyp == ATYP_DOMAIN:
        (length,) = await reader.readexactly(1)
        host = (await reader.readexactly(length)).decode("idna")
    else:
        writer.write(bytes([SOCKS_VERSION, REP_ATYP_NOT_SUPPORTED, 0, ATYP_IPV4]) + b"\x00" * 6)
        await writer.drain()
        raise SocksError("address type %d not supported" % atyp)
    (port,) = struct.unpack("!H", await reader.readexactly(2))
    dest = "%s:%d" % (host, port)
    if cmd != CMD_CONNECT:
        writer.write(bytes([SOCKS_VERSION, REP_COMMAND_NOT_SUPPORTED, 0, ATYP_IPV4]) + b"\x00" * 6)
        await writer.drain()
        raise SocksError("command %d to %s not supported" % (cmd, dest))
    # "succeeded", bound to 0.0.0.0:0 -- nothing is dialled.
    writer.write(bytes([SOCKS_VERSION, REP_SUCCEEDED, 0, ATYP_IPV4]) + b"\x00" * 6)
    await writer.drain()
    return dest, user


async def play_dc(reader, writer, state, session, frame):
    decryptor, encryptor, plain = dc_side_ciphers(frame)
    tag = plain[56:60]
    (dc_id,) = struct.unpack("<h", plain[60:62])
    if tag not in PROTOCOL_TAGS:
        state.handshakes_failed += 1
        state.emit("dc_handshake", session=session, ok=False, tag=tag.hex(),
                   error="unknown protocol tag (wrong keys or not obfuscated2)")
        raise DCError("unknown protocol tag %s" % tag.hex())
    state.handshakes_ok += 1
    state.emit("dc_handshake", session=session, ok=True, dc=dc_id, tag=tag.hex(),
               transport=PROTOCOL_TAGS[tag])
    echoed = 0
    while True:
        data = await asyncio.wait_for(reader.read(READ_CHUNK), IDLE_TIMEOUT)
        if not data:
            break
        writer.write(encryptor.update(decryptor.update(data)))
        await writer.drain()
        echoed += len(data)
        state.bytes_echoed += len(data)
    return echoed


async def handle(reader, writer, state, auth):
    state.sessions += 1
    state.active += 1
    session = state.sessions
    started = time.monotonic()
    peer = writer.get_extra_info("peername")
    client = format_addr(peer)
    dest = None
    echoed = 0
    error = None
    stage = "socks5"
    try:
        dest, user = await asyncio.wait_for(socks5_handshake(reader, writer, auth), HANDSHAKE_TIMEOUT)
        state.emit("session_start", session=session, client=client, dest=dest, user=user)
        stage = "obfuscated2 frame"
        frame = await asyncio.wait_for(reader.readexactly(FRAME_LEN), HANDSHAKE_TIMEOUT)
        stage = "echo"
        echoed = await play_dc(reader, writer, state, session, frame)
    except asyncio.IncompleteReadError as exc:
        error = "closed during %s after %d bytes%s" % (
            stage, len(exc.partial),
            " (a bare connect probe, e.g. mtg doctor)" if stage == "obfuscated2 frame" and not exc.partial else "")
    except ConnectionError as exc:
        error = "connection error during %s: %s" % (stage, exc.__class__.__name__)
    except asyncio.TimeoutError:
        error = "timeout during %s" % stage
    except SocksError as exc:
        error = "socks: %s" % exc
    except DCError as exc:
        error = "dc: %s" % exc
    finally:
        state.active -= 1
        state.emit("session_end", session=session, client=client, dest=dest,
                   bytes_echoed=echoed, error=error,
                   duration_ms=round((time.monotonic() - started) * 1000.0, 1))
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def format_addr(addr):
    if not addr:
        return "?"
    if ":" in str(addr[0]):
        return "[%s]:%s" % (addr[0], addr[1])
    return "%s:%s" % (addr[0], addr[1])


def parse_listen(text):
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise argparse.ArgumentTypeError("expected [v6addr]:port, got %r" % text)
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise argparse.ArgumentTypeError("expected host:port, got %r" % text)
    return host, int(port)


def parse_auth(text):
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected user:password")
    return user, password


async def main_async(args):
    state = State(args.state_file)
    servers = []
    for host, port in args.listen:
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, state, args.auth), host=host, port=port,
            reuse_address=True)
        servers.append(server)
        for sock in server.sockets:
            state.emit("listening", address=list(sock.getsockname()[:2]))
    state.save()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if args.exit_after > 0:
        loop.call_later(args.exit_after, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
        await server.wait_closed()
    state.emit("stopped", sessions=state.sessions, handshakes_ok=state.handshakes_ok,
               bytes_echoed=state.bytes_echoed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--listen", action="append", type=parse_listen,
                        help="host:port or [v6]:port to listen on (repeatable); "
                             "default 127.0.0.1:1080")
    parser.add_argument("--auth", type=parse_auth, default=None,
                        help="require SOCKS5 user:password auth (default: no auth; "
                             "user/password sent by a client is accepted)")
    parser.add_argument("--state-file", default=None,
                        help="JSON summary rewritten after every event")
    parser.add_argument("--exit-after", type=float, default=0,
                        help="stop after this many seconds (0: run until signalled)")
    args = parser.parse_args(argv)
    if not args.listen:
        args.listen = [("127.0.0.1", 1080)]
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
