# -*- coding: utf-8 -*-
"""Reference mode's classifiers (module_utils/reference.py): what is compared with an ordinary site."""

from __future__ import absolute_import, division, print_function

import os
import re
import socket
import struct
import threading

import pytest

from ansible_collections.tgproxy.stealth.plugins.module_utils import reference

README = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "README.md")


def test_a_location_keeps_scheme_port_and_path_and_hides_the_sites_own_host():
    hosts = ("proxy.example.com", "203.0.113.5")
    assert reference.location_shape("https://proxy.example.com/a?b", hosts) == "https://<host>/a?b"
    assert reference.location_shape("https://proxy.example.com:8443/", hosts) == "https://<host>:8443/"
    assert reference.location_shape("https://[2001:db8::1]:443/", ("2001:db8::1",)) == "https://<host>:443/"
    assert reference.location_shape("https://elsewhere.example.net/", hosts) == "https://elsewhere.example.net/"
    assert reference.location_shape("/login", hosts) == "relative /login"
    assert reference.location_shape(None, hosts) is None


@pytest.mark.parametrize("headers, leaks", [
    ([("location", "https://proxy.example.com:8443/")], ["location names port 8443"]),
    ([("alt-svc", 'h3=":8443"; ma=2592000')], ["alt-svc names port 8443"]),
    ([("alt-svc", 'h3=":443"; ma=2592000, h3-29=":9443"')], ["alt-svc names port 9443"]),
    ([("content-location", "http://127.0.0.1:8080/x")], ["content-location names port 8080"]),
    ([("location", "https://proxy.example.com/")], []),
    ([("location", "https://proxy.example.com:443/")], []),
    ([("alt-svc", 'h3=":443"; ma=2592000')], []),
    ([("server", "Caddy")], []),
])
def test_a_header_that_names_a_port_other_than_the_public_ones_is_a_leak(headers, leaks):
    assert reference.leaked_ports(headers) == leaks


def test_the_head_of_an_answer_is_parsed_and_per_request_values_are_left_out():
    data = (b"HTTP/1.1 200 OK\r\nServer: Caddy\r\nDate: Mon, 30 Nov 2026 03:00:00 GMT\r\nETag: \"abc\"\r\n"
            b"Content-Length: 12\r\nContent-Type: text/html; charset=utf-8\r\n\r\nhello world!")
    status, headers = reference.parse_head(data)
    assert status == "HTTP/1.1 200 OK"
    assert ("etag", '"abc"') in headers and ("server", "Caddy") in headers
    assert reference.parse_head(b"\x15\x03\x03\x00\x02\x02\x28") == (None, [])
    for name in ("date", "etag", "content-length", "location", "last-modified"):
        assert name in reference.PER_REQUEST_HEADERS


class _Server(object):
    """A loopback TCP server that answers every connection with canned bytes, then closes."""

    def __init__(self, answer):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.answer = answer
        self.endpoint = {"host": "127.0.0.1", "port": self.sock.getsockname()[1]}
        self.requests = []
        self.thread = threading.Thread(target=self.serve)
        self.thread.daemon = True
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            with conn:
                self.requests.append(conn.recv(65536))
                conn.sendall(self.answer)

    def close(self):
        self.sock.close()


def test_an_http_answer_is_reduced_to_status_header_names_stable_values_location_and_leaks():
    server = _Server(b"HTTP/1.1 308 Permanent Redirect\r\nConnection: close\r\nLocation: https://a.example:8443/x\r\n"
                     b"Server: Caddy\r\nDate: Mon, 30 Nov 2026 03:00:00 GMT\r\n\r\n")
    try:
        seen = reference.observe_http(server.endpoint, reference.http_request("GET", "/x", "a.example"), tls=False,
                                      hosts=("a.example",))
    finally:
        server.close()
    assert seen == {"status": "HTTP/1.1 308 Permanent Redirect", "headers": ["connection", "date", "location", "server"],
                    "values": {"connection": "close", "server": "Caddy"}, "location": "https://<host>:8443/x",
                    "leaks": ["location names port 8443"]}
    assert server.requests[0].startswith(b"GET /x HTTP/1.1\r\nHost: a.example\r\n")


def test_http_10_without_host_sends_no_host_header():
    assert b"Host:" not in reference.http_request("GET", "/", None, "1.0")
    assert reference.http_request("GET", "/", None, "1.0").startswith(b"GET / HTTP/1.0\r\n")


def test_both_sides_get_the_same_probes_each_with_its_own_names():
    ours = reference.http_suite("proxy.example.com", "127.0.0.1")
    theirs = reference.http_suite("www.example.org", "192.0.2.7")
    assert [p[0] for p in ours] == [p[0] for p in theirs]
    assert len(set(p[0] for p in ours)) == len(ours)
    names = set(p[0] for p in ours)
    # the list: /, a missing path, robots.txt, favicon, HEAD; HTTP/1.0 without Host, Host = IP, an
    # unknown Host, on both ports
    for name in ("https_root", "https_missing", "https_robots", "https_favicon", "https_head", "https_http10_no_host",
                 "https_host_ip", "https_unknown_host", "http_root", "http_http10_no_host", "http_host_ip",
                 "http_unknown_host"):
        assert name in names
    by_name = dict((p[0], p) for p in theirs)
    assert b"Host: 192.0.2.7" in by_name["https_host_ip"][3]
    assert by_name["https_root"][4] == "www.example.org" and by_name["http_root"][4] is None


def _record(rtype, length):
    return struct.pack("!BHH", rtype, 0x0303, length) + b"\x00" * length


def test_the_first_flight_is_read_as_record_types_and_sizes():
    flight = _record(0x16, 90) + _record(0x14, 1) + _record(0x17, 20) + _record(0x17, 1500) + _record(0x17, 80)
    server = _Server(flight)
    try:
        seen = reference.first_flight(server.endpoint, b"\x16\x03\x01\x00\x00", idle=0.2)
        fake = reference.first_flight(server.endpoint, b"\x16\x03\x01\x00\x00", idle=0.2, faketls=True)
    finally:
        server.close()
    assert seen == [(0x16, 90), (0x14, 1), (0x17, 20), (0x17, 1500), (0x17, 80)]
    names, size = reference.flight_summary(seen)
    assert names == ["handshake", "change_cipher_spec", "application_data", "application_data", "application_data"]
    assert size == 1600
    assert fake[:3] == seen[:3]


def test_an_uncalibrated_flight_fails_and_a_calibrated_one_shows_only_catalogued_differences():
    site = {"count": 20, "median": 1700, "min": 1698, "max": 1702}
    calibrated = {"faketls": {"count": 20, "median": 1720, "min": 1600, "max": 1800}, "site": site,
                  "faketls_records": [3], "site_records": [6], "calibrated": True}
    rows = dict((r["probe"], r) for r in reference.flight_results(calibrated))
    assert rows["faketls_flight_bytes"]["identical"]
    assert rows["faketls_flight_records"]["known_difference"] and rows["faketls_flight_spread"]["known_difference"]
    loose = dict(calibrated, faketls={"count": 20, "median": 3600, "min": 2500, "max": 4700}, calibrated=False)
    rows = dict((r["probe"], r) for r in reference.flight_results(loose))
    assert not rows["faketls_flight_bytes"]["identical"] and not rows["faketls_flight_bytes"]["known_difference"]


def test_stats_are_median_and_range():
    assert reference._stats([5, 1, 3]) == {"count": 3, "median": 3, "min": 1, "max": 5}  # pylint: disable=W0212
    assert reference._stats([4, 1, 3, 2])["median"] == 2  # pylint: disable=W0212
    assert reference._stats([])["median"] is None  # pylint: disable=W0212


def test_every_catalogued_difference_has_fields_and_a_reason():
    for name, entry in reference.KNOWN.items():
        assert entry["fields"] and len(entry["reason"]) > 40, name


def test_the_readme_lists_exactly_the_catalogued_differences():
    with open(README) as handle:
        text = handle.read()
    section = text.split("<!-- reference-known:start -->", 1)[1].split("<!-- reference-known:end -->", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ([^|]+) \| (.+) \|$", section, re.M)
    assert [(name, fields.strip(), reason.strip()) for name, fields, reason in rows] == reference.known_table()


def test_the_readme_lists_exactly_the_differences_each_front_shows():
    with open(README) as handle:
        text = handle.read()
    section = text.split("<!-- front-known:start -->", 1)[1].split("<!-- front-known:end -->", 1)[0]
    rows = re.findall(r"^\| `([a-z_ ]+)` \| `([a-z0-9_]+)` \| ([^|]+) \| (.+) \|$", section, re.M)
    assert [tuple(cell.strip() for cell in row) for row in rows] == reference.front_table()


def test_the_doctor_gets_the_catalogue_for_its_front_and_the_operators_own_on_top():
    assert set(reference.known_differences("mtg_direct")) == {"oversized_record", "wrong_record_version"}
    assert set(reference.known_differences("haproxy", ssh_route=True)) == {"oversized_record", "ssh_banner"}
    assert reference.known_differences("sslh", extra={"plain_http": "mine"})["plain_http"] == "mine"
    assert reference.known_differences(None) == {}
    for front in reference.FRONTS:
        for entry in reference.KNOWN_BY_FRONT[front].values():
            assert entry["fields"] and len(entry["reason"]) > 40
