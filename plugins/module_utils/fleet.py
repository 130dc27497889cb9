# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a visitor of a host's :443 sees, and which of it two hosts of a fleet may share.

Part of the collection's stealth model: the doctor collects each host's public
traits (``public_traits`` module, on the host) and fails when two hosts of one
run share a trait that identifies them beyond what ordinary sites share. The
same ``Server: nginx`` or the same CA is fine; the same page body, favicon or
certificate lets whoever finds one proxy find the others.
Only the Python standard library is used (the collection runs on the host).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import re
import socket
import ssl
import time

try:
    from ansible_collections.tgproxy.stealth.plugins.module_utils import probes
except ImportError:  # imported by path (tests, test bed tools)
    import probes  # type: ignore

PATHS = ("/", "/favicon.ico", "/robots.txt", "/sitemap.xml", "/no-such-page")
# traits two hosts may share (ordinary sites share them too), with the reason
ORDINARY = {
    "server": "the same web server software answers for millions of sites",
    "header_names": "a web server sends the same set of headers for every site it serves",
    "status:/no-such-page": "every site answers a missing page with 404",
}
# traits two hosts of a fleet must never share: what each identifies
IDENTIFYING = {
    "certificate": "the same certificate (and key) on two hosts",
    "stylesheet": "the same stylesheet",
}
for _path in PATHS:
    IDENTIFYING["body:" + _path] = "the same body at %s" % _path


def _context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_get(host, port, domain, path, timeout=5.0):
    """(status, [(name, value)], body, leaf certificate DER) of an HTTP/1.0 GET over TLS with the domain's SNI."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        with _context().wrap_socket(sock, server_hostname=domain) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            tls.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n" % (
                path, domain)).encode("ascii"))
            data = probes.receive(tls, time.monotonic() + timeout, limit=16 << 20)
    finally:
        sock.close()
    head, dummy, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    match = re.match(r"^HTTP/\d(?:\.\d)? (\d{3})", lines[0] if lines else "")
    status = int(match.group(1)) if match else 0
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return status, headers, body, der


def _sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


def collect(host, port, domain, timeout=5.0):
    """The host's public traits: {trait: value}, values short hashes or plain strings."""
    traits = {}
    index_body = b""
    for path in PATHS:
        status, headers, body, der = http_get(host, port, domain, path, timeout)
        traits["body:" + path] = _sha(body) if body else ""
        if path == "/":
            index_body = body
            traits["certificate"] = _sha(der) if der else ""
            traits["server"] = dict((name.lower(), value) for name, value in headers).get("server", "")
            traits["header_names"] = " ".join(sorted(set(name.lower() for name, value in headers)))
            traits["status:/"] = str(status)
        if path == "/no-such-page":
            traits["status:/no-such-page"] = str(status)
    css = re.search(rb'<link[^>]+rel="stylesheet"[^>]+href="(/[^"]+)"', index_body)
    if css:
        dummy, dummy, body, dummy = http_get(host, port, domain, css.group(1).decode("ascii", "replace"), timeout)
        traits["stylesheet"] = _sha(body) if body else ""
    return traits


def shared(mine, theirs):
    """The identifying traits two hosts share (empty values - nothing served - are not compared)."""
    return sorted(name for name in IDENTIFYING if mine.get(name) and mine.get(name) == theirs.get(name))


def shared_messages(traits_by_host, me):
    """One message per identifying trait this host shares with other hosts of the run."""
    mine = traits_by_host.get(me) or {}
    hosts_by_trait = {}
    for host in sorted(traits_by_host):
        if host == me or not traits_by_host[host]:
            continue
        for name in shared(mine, traits_by_host[host]):
            hosts_by_trait.setdefault(name, []).append(host)
    return ["%s with %s: whoever finds one proxy finds the other" % (IDENTIFYING[name], ", ".join(hosts))
            for name, hosts in sorted(hosts_by_trait.items())]
