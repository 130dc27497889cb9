# -*- coding: utf-8 -*-
"""The per-host website generator: deterministic in its seed, different for every other seed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import struct
from xml.etree import ElementTree
from html.parser import HTMLParser

from hypothesis import given, settings, strategies as st

from ansible_collections.tgproxy.stealth.plugins.module_utils import site

DOMAIN = "proxy.example.com"
SEEDS = st.text(alphabet="0123456789abcdef", min_size=8, max_size=64)


class _Structure(HTMLParser):
    """The page's skeleton: its tags with their classes, in order (what a structural fingerprint compares)."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs).get("class")))


def structure(page):
    parser = _Structure()
    parser.feed(page.decode("utf-8"))
    return tuple(parser.tags)


def test_the_same_seed_gives_the_same_bytes():
    assert site.generate("seed-1", DOMAIN) == site.generate("seed-1", DOMAIN)
    assert site.site_id(site.generate("seed-1", DOMAIN)) == site.site_id(site.generate("seed-1", DOMAIN))


def test_a_site_has_every_part_an_ordinary_site_has():
    files = site.generate("0123456789abcdef", DOMAIN)
    for path in ("index.html", "404.html", "robots.txt", "sitemap.xml", "favicon.ico"):
        assert path in files
    assert len([path for path in files if path.endswith(".html")]) >= 5
    css = [path for path in files if path.endswith(".css")]
    assert len(css) == 1 and re.match(r"^assets/[a-z]+-[0-9a-f]{10}\.css$", css[0])
    index = files["index.html"].decode("utf-8")
    assert index.startswith("<!doctype html>") and '<link rel="stylesheet" href="/%s">' % css[0] in index
    assert "Sitemap: https://%s/sitemap.xml" % DOMAIN in files["robots.txt"].decode("ascii")
    urls = [loc.text for loc in ElementTree.fromstring(files["sitemap.xml"]).iter(
        "{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert urls[0] == "https://%s/" % DOMAIN and len(urls) >= 4
    # every page the sitemap names exists, under its pretty or plain URL
    for url in urls[1:]:
        path = url[len("https://%s/" % DOMAIN):]
        assert (path.rstrip("/") + "/index.html" if path.endswith("/") else path) in files


def test_the_favicon_is_a_real_16px_icon():
    icon = site.generate("abc", DOMAIN)["favicon.ico"]
    reserved, kind, count = struct.unpack("<HHH", icon[:6])
    width, height, dummy, dummy, planes, bits, size, offset = struct.unpack("<BBBBHHII", icon[6:22])
    assert (reserved, kind, count, width, height, planes, bits, offset) == (0, 1, 1, 16, 16, 1, 32, 22)
    assert size == len(icon) - 22 == 40 + 16 * 16 * 4 + 64


def test_the_title_the_operator_sets_is_used():
    files = site.generate("abc", DOMAIN, "Northwind Field Notes")
    assert "<title>Northwind Field Notes</title>" in files["index.html"].decode("utf-8")


def test_text_is_escaped():
    files = site.generate("abc", "x.example", 'A <b>"bold"</b> & title')
    assert "<title>A &lt;b&gt;&quot;bold&quot;&lt;/b&gt; &amp; title</title>" in files["index.html"].decode("utf-8")


def test_the_legacy_page_marker_is_not_in_a_generated_site():
    for seed in ("a", "b", "c", "d"):
        assert all(site.LEGACY_MARKER.encode("utf-8") not in data for data in site.generate(seed, DOMAIN).values())


@settings(max_examples=200, deadline=None)
@given(SEEDS, SEEDS)
def test_two_seeds_never_share_a_body_a_structure_or_an_asset_set(seed_a, seed_b):
    if seed_a == seed_b:
        return
    a, b = site.generate(seed_a, DOMAIN), site.generate(seed_b, DOMAIN)
    assert site.site_id(a) != site.site_id(b)
    assert set(a) != set(b)  # the asset set (the stylesheet is fingerprinted)
    for path in set(a) & set(b):  # every path both have differs in its bytes
        assert a[path] != b[path], path
    assert structure(a["index.html"]) != structure(b["index.html"])
    assert structure(a["404.html"]) != structure(b["404.html"])


def test_a_fleet_of_fifty_has_fifty_different_sites():
    sites = [site.generate("%064x" % n, DOMAIN) for n in range(50)]
    assert len(set(site.site_id(s) for s in sites)) == 50
    assert len(set(s["index.html"] for s in sites)) == 50
    assert len(set(frozenset(s) for s in sites)) == 50
    # variety beyond the fingerprints: several layouts, themes and page sets
    titles = set(re.search(r"<title>([^<]+)</title>", s["index.html"].decode()).group(1) for s in sites)
    assert len(titles) >= 25
    assert len(set(len(s) for s in sites)) >= 3


def test_the_fleet_comparison_names_the_hosts_that_share_a_site():
    from ansible_collections.tgproxy.stealth.plugins.filter.topology import tgp_shared_site
    hostvars = {"a": {"__tgproxy_site_key": "k1"}, "b": {"__tgproxy_site_key": "k1"}, "c": {"__tgproxy_site_key": "k2"},
                "d": {"__tgproxy_site_key": ""}, "e": {}, "f": {"__tgproxy_site_key": ""}}
    hosts = sorted(hostvars)
    assert tgp_shared_site(hostvars, hosts, "a") == ["b"]
    assert tgp_shared_site(hostvars, hosts, "c") == []
    # a host without a site yet (first deploy: its seed is made on the host) shares nothing
    assert tgp_shared_site(hostvars, hosts, "d") == [] and tgp_shared_site(hostvars, hosts, "e") == []
    # only the hosts of this run count
    assert tgp_shared_site(hostvars, ["a", "c"], "a") == []
