# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reference mode: the proxy host against an ordinary website.

The probe suite of ``probes`` compares the public port with the web server
*behind* it: the host with itself. That comparison cannot see what the web
server itself gives away. Here the proxy host's public :443 and :80 are
compared with a *reference site*: the same kind of web server, deployed the way
an ordinary site operator would, with no proxy and no router.

Three kinds of evidence:

* every probe of ``probes.suite`` (each side with its own domain as the SNI);
* HTTP-level probes on both ports: the status line, the set of header names and
  the value of every header that is not per request or per content, and the
  shape of a ``Location`` (scheme, port, path; the host is the side's own);
* TLS: session tickets and resumption, and the record types of the server's
  first flight.

Differences that no setting can remove are catalogued in ``KNOWN``, with the
reason, per probe and field (the README's stealth table is generated from it).
``faketls_flight`` measures the one difference a passive observer can size: the
FakeTLS first flight against the site's own flight for the same name.

Stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import errno
import os
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

try:
    from ansible_collections.tgproxy.stealth.plugins.module_utils import _faketls, probes, topology
except ImportError:  # imported by path (tests, test bed tools)
    import _faketls  # type: ignore
    import probes  # type: ignore
    import topology  # type: ignore

# headers whose value is per request, per response body or per site: their
# presence is compared, never their value
PER_REQUEST_HEADERS = ("date", "etag", "last-modified", "content-length", "location", "set-cookie", "age",
                       "expires", "content-range", "x-request-id")
# observation fields that are per site (the certificate is the site's own)
PER_SITE_FIELDS = ("leaf_sha256",)
PUBLIC_PORTS = (topology.PUBLIC_HTTP_PORT, topology.PUBLIC_TLS_PORT)  # the model's public ports
RECORD_NAMES = {0x14: "change_cipher_spec", 0x15: "alert", 0x16: "handshake", 0x17: "application_data"}

# The catalogue of differences from an ordinary site that no setting removes:
# probe -> {"fields": [...], "reason": ...}. Only differences in the fields
# named are excused; anything else a probe shows fails the doctor.
KNOWN = {
    "faketls_flight_records": {
        "fields": ["records"],
        "reason": "a Telegram client accepts the server's FakeTLS answer only as ServerHello, ChangeCipherSpec and "
                  "ONE ApplicationData record; a TLS 1.3 server sends its encrypted handshake in several records. "
                  "mtg sizes that one record like the site's whole flight (defense.doppelganger), so the bytes "
                  "match; the record count cannot",
    },
    "faketls_flight_spread": {
        "fields": ["spread"],
        "reason": "mtg draws the record size from mean +/- the measured deviation with a floor of 100 bytes; a "
                  "site's own flight for one certificate varies by a few bytes only",
    },
}

_KNOWN_FLIGHT_TOLERANCE = 200  # bytes between the FakeTLS and the site's median

# What the front (mtg on :443, or the router) answers unlike the web server behind it, and that no setting
# removes: front -> probe -> {"fields", "reason"}. Found by running the suite against every topology in the test
# bed; the doctor excuses these (and only in these fields), in both modes.
FRONTS = ("mtg_direct", "haproxy", "nginx_stream", "sslh")
KNOWN_BY_FRONT = {
    "mtg_direct": {
        "oversized_record": {
            "fields": ["first", "close", "timing"],
            "reason": "mtg reads the whole announced record before it decides (it waits); a TLS server answers a "
                      "record longer than 2^14 + 2048 with record_overflow at once. Not configurable in mtg",
        },
        "wrong_record_version": {
            "fields": ["close"],
            "reason": "nginx 1.26 (Debian 13) resets a connection whose record version it rejects; mtg's fronting "
                      "relays that and closes its side with FIN: a relay does not mirror a peer's reset",
        },
    },
    "haproxy": {
        "oversized_record": {
            "fields": ["close"],
            "reason": "HAProxy passes such a record on at once and to the web server (not to mtg), so the alert is "
                      "the web server's own; the web server then resets the connection and a layer-4 proxy closes "
                      "its side with FIN (option nolinger would turn every close into a reset)",
        },
    },
    "nginx_stream": {
        "oversized_record": {
            "fields": ["first", "close", "timing"],
            "reason": "ssl_preread waits for the whole announced record until preread_timeout, then closes; no "
                      "nginx directive inspects the record length",
        },
    },
    "sslh": {
        "oversized_record": {
            "fields": ["first", "close", "timing"],
            "reason": "sslh's TLS probe waits for the whole announced record until its timeout, then passes what it "
                      "has to the default backend (sslh 2.1; 1.20 passes it on at once)",
        },
    },
}
# a router route with match ssh: SSH shares :443 by the operator's choice
KNOWN_WITH_SSH_ROUTE = {
    "ssh_banner": {
        "fields": ["first", "close", "timing"],
        "reason": "SSH shares :443 by the operator's choice (a route with match ssh): an SSH banner reaches the SSH "
                  "server, as intended",
    },
}


def known_differences(front, ssh_route=False, extra=None):
    """The catalogue's differences for this front (and an SSH route), with the operator's own on top."""
    known = dict(KNOWN_BY_FRONT.get(front, {}))
    if ssh_route:
        known.update(KNOWN_WITH_SSH_ROUTE)
    known.update(extra or {})
    return known


def known_table():
    """[(probe, fields, reason)] for the README: differences from an ordinary site."""
    return [(name, ", ".join(entry["fields"]), entry["reason"]) for name, entry in sorted(KNOWN.items())]


def front_table():
    """[(front, probe, fields, reason)] for the README: what a front answers unlike the web server behind it."""
    rows = [(front, name, ", ".join(entry["fields"]), entry["reason"])
            for front in FRONTS for name, entry in sorted(KNOWN_BY_FRONT[front].items())]
    return rows + [("ssh route", name, ", ".join(entry["fields"]), entry["reason"])
                   for name, entry in sorted(KNOWN_WITH_SSH_ROUTE.items())]


# --- HTTP -----------------------------------------------------------------------------
def http_request(method, path, host, version="1.1"):
    """The bytes of a minimal browser-like request (no Host header when ``host`` is None)."""
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    lines += ["User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
              "Accept: */*", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def parse_head(data):
    """(status line, [(name, value)]) of an HTTP answer's head, or (None, [])."""
    if not data.startswith(b"HTTP/"):
        return None, []
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def location_shape(value, hosts):
    """A Location reduced to what is not the site's own: scheme, explicit port, path."""
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep:
        return "relative " + value
    authority, slash, path = rest.partition("/")
    host, port = authority, None
    if authority.startswith("["):
        host, dummy, tail = authority[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else None
    elif authority.count(":") == 1:
        host, port = authority.split(":")
    shown = "<host>" if host in hosts else host
    return "%s://%s%s%s%s" % (scheme, shown, (":" + port) if port else "", slash, path)


def leaked_ports(headers, public_ports=PUBLIC_PORTS):
    """Ports other than the public ones that a header names (Location, Alt-Svc, Content-Location)."""
    leaks = []
    for name, value in headers:
        if name in ("location", "content-location", "refresh", "link"):
            shape = location_shape(value.split("url=")[-1] if name == "refresh" else value.strip("<>"), ())
            port = shape and shape.split("://", 1)[-1].split("/", 1)[0].rpartition(":")[2]
            if port and port.isdigit() and int(port) not in public_ports:
                leaks.append("%s names port %s" % (name, port))
        if name == "alt-svc":
            for part in value.split(","):
                if '=":' in part:
                    port = part.split('=":', 1)[1].split('"', 1)[0]
                    if port.isdigit() and int(port) not in public_ports:
                        leaks.append("alt-svc names port %s" % port)
    return leaks


def _read_until_close(sock, deadline):
    return probes.receive(sock, deadline, limit=262144)


def observe_http(endpoint, request, sni=None, tls=True, hosts=(), timeout=5.0):
    """Send one request (over TLS when ``tls``) and reduce the answer to what is not per request."""
    try:
        sock = probes._connect(endpoint, timeout)  # pylint: disable=protected-access
    except OSError as exc:
        return {"status": "connect_failed " + errno.errorcode.get(exc.errno, str(exc))}
    try:
        if tls:
            sock = probes.client_context(alpn=["http/1.1"]).wrap_socket(sock, server_hostname=sni)
        sock.sendall(request)
        data = _read_until_close(sock, time.monotonic() + timeout)
    except (ssl.SSLError, OSError) as exc:
        return {"status": "failed " + (getattr(exc, "reason", None) or errno.errorcode.get(
            getattr(exc, "errno", None) or 0, str(exc)[:60]))}
    finally:
        sock.close()
    status, headers = parse_head(data)
    if status is None:
        return {"status": "not http" if data else "nothing"}
    # the Host sent is the side's own too (an unknown Host is echoed in a redirect)
    sent = [line[5:].strip() for line in request.decode("latin-1").split("\r\n") if line.lower().startswith("host:")]
    hosts = tuple(hosts) + tuple(sent)
    names = sorted(set(name for name, dummy in headers))
    values = dict((name, value) for name, value in headers if name not in PER_REQUEST_HEADERS)
    seen = {"status": status, "headers": names, "values": values,
            "location": location_shape(dict(headers).get("location"), hosts)}
    leaks = leaked_ports(headers)
    if leaks:
        seen["leaks"] = leaks
    return seen


def http_suite(domain, address, token=None):
    """[(name, description, port kind, request, sni)]: the same requests to both sides, each with its own names
    (``token`` makes the missing path and the unknown Host; give both sides the same)."""
    token = token or os.urandom(4).hex()
    missing = "/m%s.html" % token
    unknown = "u%s.example.net" % token
    out = []
    for kind in ("https", "http"):
        sni = domain if kind == "https" else None
        out += [
            (kind + "_root", "GET / with the site's Host", kind, http_request("GET", "/", domain), sni),
            (kind + "_http10_no_host", "HTTP/1.0 without Host", kind, http_request("GET", "/", None, "1.0"), sni),
            (kind + "_host_ip", "Host = the address", kind, http_request("GET", "/", address), sni),
            (kind + "_unknown_host", "an unknown Host", kind, http_request("GET", "/", unknown), sni),
        ]
    out += [
        ("https_missing", "a missing path", "https", http_request("GET", missing, domain), domain),
        ("https_robots", "/robots.txt", "https", http_request("GET", "/robots.txt", domain), domain),
        ("https_favicon", "/favicon.ico", "https", http_request("GET", "/favicon.ico", domain), domain),
        ("https_head", "HEAD /", "https", http_request("HEAD", "/", domain), domain),
        ("http_missing", "a missing path on :80", "http", http_request("GET", missing, domain), None),
    ]
    return out


# --- TLS ------------------------------------------------------------------------------
def observe_resumption(endpoint, sni, timeout=5.0):
    """Does the server issue a session ticket, and resume a session with it?"""
    ctx = probes.client_context(alpn=["http/1.1"])
    try:
        with ctx.wrap_socket(probes._connect(endpoint, timeout), server_hostname=sni) as tls:  # pylint: disable=W0212
            tls.sendall(http_request("GET", "/", sni))
            _read_until_close(tls, time.monotonic() + timeout)
            session = tls.session
        ticket = bool(session is not None and session.has_ticket)
        resumed = False
        if ticket:
            with ctx.wrap_socket(probes._connect(endpoint, timeout), server_hostname=sni,  # pylint: disable=W0212
                                 session=session) as again:
                resumed = again.session_reused
        return {"ticket": ticket, "resumed": resumed,
                "lifetime_hint": session.ticket_lifetime_hint if ticket else None}
    except (ssl.SSLError, OSError) as exc:
        return {"ticket": None, "failed": getattr(exc, "reason", None) or str(exc)[:60]}


def first_flight(endpoint, hello, idle=0.2, timeout=5.0, faketls=False):
    """[(record type, length)] of the server's first flight for ``hello`` (until it pauses or closes; a FakeTLS
    answer is complete at its ApplicationData record)."""
    def complete(data):
        return faketls and any(record[0] == 0x17 for record in _faketls.split_records(data)[0])

    sock = probes._connect(endpoint, timeout)  # pylint: disable=protected-access
    try:
        sock.sendall(hello)
        data = probes.receive(sock, time.monotonic() + timeout, idle=idle, done=complete)
    finally:
        sock.close()
    records, dummy = _faketls.split_records(data)
    return [(rtype, len(payload)) for rtype, dummy_version, payload in records]


def flight_summary(flight):
    """Record names and the ApplicationData bytes after ChangeCipherSpec (what sizes a certificate flight)."""
    names = [RECORD_NAMES.get(rtype, "0x%02x" % rtype) for rtype, dummy in flight]
    after_ccs, size = False, 0
    for rtype, length in flight:
        if rtype == 0x14:
            after_ccs = True
        elif after_ccs and rtype == 0x17:
            size += length
    return names, size


def _site_hello(sni):
    """The FakeTLS client's ClientHello with a random client random: mtg fronts it, the site answers it."""
    template, dummy = _faketls.build_client_hello_template(sni)
    offset = _faketls.RANDOM_OFFSET
    return template[:offset] + os.urandom(_faketls.RANDOM_LEN) + template[offset + _faketls.RANDOM_LEN:]


def _stats(values):
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "median": None, "min": None, "max": None}
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2
    return {"count": len(ordered), "median": median, "min": ordered[0], "max": ordered[-1]}


def faketls_flight(endpoint, domain, secret_key, count=20):
    """The FakeTLS first flight (with the secret) against the site's own first flight for the same name.

    Each side is sampled ``count`` times, interleaved. Returns both summaries and
    the verdict: ``calibrated`` when the FakeTLS ApplicationData median is within
    200 bytes of the site's.
    """
    fake, site, fake_records, site_records = [], [], set(), set()
    for dummy in range(int(count)):
        hello = _faketls.build_client_hello(secret_key, domain)
        names, size = flight_summary(first_flight(endpoint, hello, faketls=True))
        fake.append(size)
        fake_records.add(len(names))
        names, size = flight_summary(first_flight(endpoint, _site_hello(domain)))
        site.append(size)
        site_records.add(len(names))
    out = {"faketls": _stats(fake), "site": _stats(site),
           "faketls_records": sorted(fake_records), "site_records": sorted(site_records)}
    if out["faketls"]["median"] is None or not out["site"]["median"]:
        out["calibrated"] = None
    else:
        out["calibrated"] = abs(out["faketls"]["median"] - out["site"]["median"]) <= _KNOWN_FLIGHT_TOLERANCE
    return out


# --- the comparison -------------------------------------------------------------------
def _address_of(host):
    """The IP address a name is reached at (the Host of the "Host = the address" probes)."""
    try:
        return socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, IndexError):
        return host


def _without(seen, fields):
    return dict((key, value) for key, value in seen.items() if key not in fields)


def _compare(name, description, ours, theirs, known):
    differs = probes.compare(ours, theirs)
    reason = probes.known_reason(known, name, differs)
    return {"probe": name, "description": description, "public": ours, "backend": theirs,
            "identical": not differs, "differs_in": differs, "known_difference": reason}


def run_reference(public, public_http, reference, reference_http, domain, reference_domain, known=None,
                  wait=6.5, parallel=8):
    """Every probe against the proxy host's public ports and the reference site's; results in suite order.

    ``public``/``reference`` are TLS endpoints, ``*_http`` the :80 endpoints
    (dicts with host, port); each side is probed with its own domain.
    """
    known = dict(KNOWN, **(known or {}))
    ours_suite = probes.suite(domain)
    theirs_suite = dict((p[0], p) for p in probes.suite(reference_domain))
    jobs = []
    for name, description, kind, stimulus in ours_suite:
        other = theirs_suite[name][3]
        jobs.append((name, description,
                     lambda k=kind, s=stimulus: _without(probes.observe(public, k, s, wait), PER_SITE_FIELDS),
                     lambda k=kind, s=other: _without(probes.observe(reference, k, s, wait), PER_SITE_FIELDS)))
    token = os.urandom(4).hex()
    ours_http = http_suite(domain, _address_of(public["host"]), token)
    theirs_http = dict((p[0], p) for p in http_suite(reference_domain, _address_of(reference["host"]), token))
    for name, description, kind, request, sni in ours_http:
        other = theirs_http[name]
        ends = (public, reference) if kind == "https" else (public_http, reference_http)
        jobs.append((name, description,
                     lambda e=ends[0], r=request, s=sni, t=kind == "https":
                     observe_http(e, r, s, t, (domain, public["host"])),
                     lambda e=ends[1], r=other[3], s=other[4], t=kind == "https":
                     observe_http(e, r, s, t, (reference_domain, reference["host"]))))
    jobs.append(("tls_resumption", "session ticket and resumption",
                 lambda: observe_resumption(public, domain), lambda: observe_resumption(reference, reference_domain)))
    jobs.append(("first_flight", "record types of the server's first flight",
                 lambda: {"records": flight_summary(first_flight(public, _site_hello(domain)))[0]},
                 lambda: {"records": flight_summary(first_flight(reference, _site_hello(reference_domain)))[0]}))

    def both(job):
        name, description, ours, theirs = job
        with ThreadPoolExecutor(max_workers=2) as pair:
            seen_ours, seen_theirs = pair.submit(ours), pair.submit(theirs)
            return name, description, seen_ours.result(), seen_theirs.result()

    with ThreadPoolExecutor(max_workers=max(1, int(parallel))) as pool:
        observed = list(pool.map(both, jobs))
    return [_compare(name, description, ours, theirs, known) for name, description, ours, theirs in observed]


def flight_results(flight, known=None):
    """The FakeTLS flight measurement as suite results (bytes, record count, spread)."""
    known = dict(KNOWN, **(known or {}))
    fake, site = flight["faketls"], flight["site"]
    results = [_compare("faketls_flight_bytes", "FakeTLS first flight: ApplicationData bytes (median of %d)"
                        % fake["count"],
                        {"median_within_%d" % _KNOWN_FLIGHT_TOLERANCE: bool(flight["calibrated"])},
                        {"median_within_%d" % _KNOWN_FLIGHT_TOLERANCE: True}, known),
               _compare("faketls_flight_records", "FakeTLS first flight: records",
                        {"records": flight["faketls_records"]}, {"records": flight["site_records"]}, known),
               _compare("faketls_flight_spread", "FakeTLS first flight: size range",
                        {"spread": (fake["max"] or 0) - (fake["min"] or 0)},
                        {"spread": (site["max"] or 0) - (site["min"] or 0)}, known)]
    for result in results:
        result["measured"] = {"faketls": fake, "site": site}
    return results


def format_row(result):
    def short(seen):
        if "status" in seen:
            text = seen["status"]
            if seen.get("values", {}).get("server"):
                text += ", Server: " + seen["values"]["server"]
            return text + (" (%s)" % "; ".join(seen["leaks"]) if seen.get("leaks") else "")
        if "handshake" in seen:
            if seen["handshake"] != "ok":
                return "%s %s" % (seen["handshake"], seen.get("reason") or seen.get("error") or "")
            return "%s %s %s" % (seen["version"], seen["cipher"], seen["alpn"] or "-")
        if "first" in seen:
            first = seen["first"]
            text = first["kind"] + "".join(" %s" % first[k] for k in ("alert", "version", "status", "error")
                                           if k in first)
            return "%s, %s %s" % (text, seen["close"], seen["timing"])
        return ", ".join("%s=%s" % item for item in sorted(seen.items()))
    verdict = "identical" if result["identical"] else ("known difference" if result["known_difference"]
                                                       else "DIFFERENT (%s)" % ", ".join(result["differs_in"]))
    return "%-24s %-16s ours: %s | reference: %s" % (result["probe"], verdict, short(result["public"]),
                                                     short(result["backend"]))
