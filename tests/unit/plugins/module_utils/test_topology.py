import pytest

from ansible_collections.tgproxy.stealth.plugins.module_utils import topology as t

KEY = bytes(range(1, 17))
GOOD = "ee" + KEY.hex() + b"proxy.example.com".hex()


def spec(**kw):
    base = dict(domain="proxy.example.com", version="2.2.8", bind_to="[::]:443", stats_bind_to="127.0.0.1:3129",
                prefer_ip="prefer-ipv4")
    base.update(kw)
    return base


def test_secret_hex_and_base64_roundtrip():
    s = t.Secret.parse(GOOD)
    assert s.key == KEY and s.domain == "proxy.example.com"
    b = t.Secret.parse(s.base64())
    assert b.hex() == GOOD and b.form == "base64"
    info = s.describe()
    assert info["kind"] == "faketls" and info["domain_valid"] is True


@pytest.mark.parametrize("bad,why", [
    ("", "empty"),
    ("ee1234", "key is"),
    ("dd" + KEY.hex(), "legacy"),
    (KEY.hex(), "legacy"),
    ("ef" + KEY.hex() + "6162", "first byte"),
    ("ee" + KEY.hex(), "no domain"),
    ("ee" + "00" * 16 + "6162", "all zeros"),
    ("not a secret !!", "neither hex"),
])
def test_secret_rejects(bad, why):
    with pytest.raises(ValueError, match=why):
        t.Secret.parse(bad)


def test_links_use_public_port_and_hex_secret():
    links = t.proxy_links(GOOD, "proxy.example.com", 443)
    assert links["tg"] == "tg://proxy?server=proxy.example.com&port=443&secret=" + GOOD
    assert links["https"].startswith("https://t.me/proxy?server=proxy.example.com&port=443&secret=ee")


@pytest.mark.parametrize("version,key", [("2.0.0", "ip"), ("2.2.8", "ip"), ("v2.2.8", "ip"), ("2.2.9", "host"),
                                         ("2.3.0", "host"), ("3.0.0", "host")])
def test_fronting_key_follows_version(version, key):
    assert t.mtg_fronting_key(version) == key
    doc = t.mtg_config(spec(version=version))
    assert key in doc["domain-fronting"]
    other = "host" if key == "ip" else "ip"
    assert other not in doc["domain-fronting"]


@pytest.mark.parametrize("value,expected", [("127.0.0.1:3128", ("127.0.0.1", 3128)), ("[::]:443", ("::", 443)),
                                            ("0.0.0.0:443", ("0.0.0.0", 443)), ("localhost:80", ("localhost", 80))])
def test_split_hostport(value, expected):
    assert t.split_hostport(value) == expected


@pytest.mark.parametrize("value", ["443", ":443", "[::]443", "1.2.3.4:0", "1.2.3.4:70000", "::1:443", None])
def test_split_hostport_rejects(value):
    with pytest.raises((ValueError, TypeError)):
        t.split_hostport(value)


@pytest.mark.parametrize("kw,var", [
    (dict(domain="localhost"), "mtg_domain"),
    (dict(domain="1.2.3.4"), "mtg_domain"),
    (dict(secret="ee1234"), "mtg_secret"),
    (dict(secret="ee" + KEY.hex() + b"other.example.com".hex()), "mtg_secret"),
    (dict(prefer_ip="ipv5"), "mtg_prefer_ip"),
    (dict(bind_to="443"), "mtg_bind_to"),
    (dict(stats_bind_to="nowhere"), "mtg_stats_bind_to"),
    (dict(version="1.0.0"), "mtg_version"),
    (dict(version="latest"), "mtg_version"),
    (dict(fronting_host="web.internal"), "mtg_fronting_host"),
    (dict(fronting_port=0), "mtg_fronting_port"),
    (dict(concurrency=-1), "mtg_concurrency"),
    (dict(public_ipv4="::1"), "mtg_public_ipv4"),
    (dict(tolerate_time_skewness="5 seconds"), "mtg_tolerate_time_skewness"),
    (dict(topology="mesh"), "mtg_topology"),
])
def test_preflight_names_the_variable(kw, var):
    errors = t.mtg_preflight(spec(**kw))
    assert [e.var for e in errors] == [var]
    assert errors[0].fix


def test_preflight_never_echoes_the_secret():
    bad = "ee" + KEY.hex() + "ff"
    errors = t.mtg_preflight(spec(secret=bad))
    assert errors and all(bad not in str(e) for e in errors)


def test_preflight_accepts_hostname_fronting_after_228():
    assert t.mtg_preflight(spec(version="2.3.0", fronting_host="web.internal")) == []


def test_topology_facts():
    facts = t.mtg_topology(spec(topology="sni_router", bind_to="127.0.0.1:3128", public_port=None))
    assert facts["public_port"] == 443 and facts["bind_port"] == 3128 and not facts["needs_bind_capability"]
    facts = t.mtg_topology(spec())
    assert facts["public_port"] == 443 and facts["needs_bind_capability"]


def test_config_doc_and_toml():
    doc = t.mtg_config(spec(proxies=["socks5://127.0.0.1:1080"], dns="https://127.0.0.1:1", public_ipv4="10.0.0.1"))
    assert "secret" not in doc
    text = t.dump_toml(dict(doc, secret=GOOD), first_keys=("secret", "bind-to"))
    lines = text.splitlines()
    assert lines[0] == 'secret = "%s"' % GOOD
    assert lines[1] == 'bind-to = "[::]:443"'
    assert '[network]\ndns = "https://127.0.0.1:1"\nproxies = ["socks5://127.0.0.1:1080"]' in text
    assert "[defense.blocklist]\nenabled = false" in text
    assert '[stats.prometheus]\nenabled = true\nbind-to = "127.0.0.1:3129"' in text
    assert "auto-update = false" in text


def test_release_names_follow_goreleaser_layout():
    rel = t.mtg_release("2.2.8", "aarch64", "https://github.com/9seconds/mtg/releases/download/")
    assert rel["url"] == "https://github.com/9seconds/mtg/releases/download/v2.2.8/mtg-2.2.8-linux-arm64.tar.gz"
    assert rel["checksums_url"].endswith("/v2.2.8/mtg-2.2.8-checksums.txt")
    assert rel["binary_in_archive"] == "mtg-2.2.8-linux-arm64/mtg"
    with pytest.raises(t.TopologyError, match="architecture"):
        t.mtg_release("2.2.8", "mips64", "https://x")


@pytest.mark.parametrize("name,ok", [("proxy.example.com", True), ("a.b", True), ("example", False),
                                     ("-bad.example.com", False), ("exa mple.com", False), ("x" * 64 + ".com", False),
                                     ("127.0.0.1", False), ("", False), (None, False)])
def test_is_hostname(name, ok):
    assert t.is_hostname(name) is ok


# [defense.doppelganger]: FakeTLS noise calibrated on https:// pages (mtg 2.2.0 on)

def test_doppelganger_default_is_the_sites_own_page():
    doc = t.mtg_config(spec(domain="proxy.stealth.test"))
    assert doc["defense"]["doppelganger"] == {"urls": ["https://proxy.stealth.test/"], "repeats-per-raid": 10,
                                              "raid-each": "6h", "drs": False}
    assert t.mtg_doppelganger_default_urls("proxy.stealth.test") == ["https://proxy.stealth.test/"]
    assert t.mtg_preflight(spec(doppelganger_urls=None)) == []


def test_doppelganger_explicit_settings_are_used():
    urls = ["https://cdn.example.net/app.js", "https://[2001:db8::1]:8443/a/b?c=1&d=2", "https://203.0.113.7/"]
    kw = dict(doppelganger_urls=urls, doppelganger_repeats=3, doppelganger_raid_each="12h30m", doppelganger_drs=True)
    assert t.mtg_preflight(spec(**kw)) == []
    assert t.mtg_config(spec(**kw))["defense"]["doppelganger"] == {
        "urls": urls, "repeats-per-raid": 3, "raid-each": "12h30m", "drs": True}


def test_doppelganger_empty_list_turns_it_off():
    assert t.mtg_preflight(spec(doppelganger_urls=[])) == []
    doc = t.mtg_config(spec(doppelganger_urls=[]))
    assert "doppelganger" not in doc["defense"] and "anti-replay" in doc["defense"]
    assert "doppelganger" not in t.dump_toml(doc)


@pytest.mark.parametrize("version", ["2.1.13", "2.0.0"])
def test_doppelganger_needs_mtg_220(version):
    # the role's defaults (urls unset) on an older mtg: no table, no error
    kw = dict(version=version, doppelganger_repeats=10, doppelganger_raid_each="6h", doppelganger_drs=False)
    assert t.mtg_preflight(spec(**kw)) == []
    assert "doppelganger" not in t.mtg_config(spec(**kw))["defense"]
    assert t.mtg_preflight(spec(doppelganger_urls=[], **kw)) == []
    # pages set explicitly: mtg < 2.2.0 would ignore the table silently
    errors = t.mtg_preflight(spec(doppelganger_urls=["https://proxy.example.com/"], **kw))
    assert [e.var for e in errors] == ["mtg_doppelganger_urls"]
    assert "mtg_version" in str(errors[0]) and version in errors[0].msg and "2.2.0" in errors[0].fix
    assert t.mtg_has_doppelganger("2.2.0") and not t.mtg_has_doppelganger("2.1.13")


@pytest.mark.parametrize("meta", ["\n", "\r", '"', "'", "{", "}", ";", "#", " ", "\t"])
@pytest.mark.parametrize("where", ["path", "end", "host"])
def test_doppelganger_urls_reject_metacharacters(meta, where):
    url = {"path": "https://example.com/a%sb" % meta, "end": "https://example.com/%s" % meta,
           "host": "https://exa%smple.com/" % meta}[where]
    errors = t.mtg_preflight(spec(doppelganger_urls=["https://example.com/", url]))
    assert [e.var for e in errors] == ["mtg_doppelganger_urls"]
    assert repr(url) in errors[0].msg and errors[0].fix
    # a line break or tab in the value is shown escaped, never raw in the message
    if meta in ("\n", "\r", "\t"):
        assert meta not in str(errors[0])


@pytest.mark.parametrize("url", [
    "http://example.com/", "example.com", "https://", "https:///path", "ftp://example.com/", "HTTPS://example.com/",
    "https://-bad.example.com/", "https://a..b/", "https://" + "x" * 64 + ".com/", "https://example.com:0/",
    "https://example.com:65536/", "https://[zz::1]/", "https://[::1/", "https://user@example.com/",
    "https://example.com/a\\b", "https://example.com/\u00e9", "https://exämple.com/", 443, None,
])
def test_doppelganger_urls_reject_what_is_not_a_whole_https_url(url):
    errors = t.mtg_preflight(spec(doppelganger_urls=[url]))
    assert [e.var for e in errors] == ["mtg_doppelganger_urls"]
    with pytest.raises(t.TopologyError, match="mtg_doppelganger_urls"):
        t.mtg_config(spec(doppelganger_urls=[url]))


@pytest.mark.parametrize("url", ["https://example.com", "https://example.com/", "https://localhost:8443/x",
                                 "https://proxy.example.com./", "https://127.0.0.1/", "https://[::1]:443/",
                                 "https://cdn.example.com/res/react/vendor/clsx-2.1.1-amd.js?v=1&x=y,z:@~%20"])
def test_doppelganger_urls_accept_https_pages(url):
    assert t.doppelganger_url_problem(url) is None
    assert t.mtg_preflight(spec(doppelganger_urls=[url])) == []


@pytest.mark.parametrize("kw,var", [
    (dict(doppelganger_urls="https://example.com/"), "mtg_doppelganger_urls"),
    (dict(doppelganger_urls={"url": "https://example.com/"}), "mtg_doppelganger_urls"),
    (dict(doppelganger_repeats=0), "mtg_doppelganger_repeats"),
    (dict(doppelganger_repeats=-1), "mtg_doppelganger_repeats"),
    (dict(doppelganger_repeats=65536), "mtg_doppelganger_repeats"),
    (dict(doppelganger_repeats="10"), "mtg_doppelganger_repeats"),
    (dict(doppelganger_repeats=True), "mtg_doppelganger_repeats"),
    (dict(doppelganger_raid_each="6 hours"), "mtg_doppelganger_raid_each"),
    (dict(doppelganger_raid_each="6h\n"), "mtg_doppelganger_raid_each"),
    (dict(doppelganger_raid_each="-6h"), "mtg_doppelganger_raid_each"),
    (dict(doppelganger_drs="yes"), "mtg_doppelganger_drs"),
    (dict(doppelganger_drs=1), "mtg_doppelganger_drs"),
])
def test_doppelganger_settings_are_checked(kw, var):
    errors = t.mtg_preflight(spec(**kw))
    assert [e.var for e in errors] == [var]
    assert errors[0].fix


def test_doppelganger_in_the_toml():
    doc = t.mtg_config(spec(domain="proxy.stealth.test"))
    text = t.dump_toml(dict(doc, secret=GOOD), first_keys=("secret", "bind-to"))
    assert ('\n[defense.doppelganger]\nurls = ["https://proxy.stealth.test/"]\nrepeats-per-raid = 10\n'
            'raid-each = "6h"\ndrs = false\n') in text
    text = t.dump_toml(t.mtg_config(spec(doppelganger_urls=["https://a.example.com/x", "https://b.example.com/"],
                                         doppelganger_drs=True)))
    assert '[defense.doppelganger]\nurls = ["https://a.example.com/x", "https://b.example.com/"]\n' in text
    assert "drs = true" in text


@pytest.mark.parametrize("listeners,version,measured", [
    # tests/benchmark/sslh-select.sh on the test bed: the sessions each release carried before it aborted
    (1, "1.20-1+b2", 510), (2, "1.20-1+b2", 510), (1, "2.1.4-1+b1", 506), (2, "2.1.4-1+b1", 506),
    (1, None, 506), (2, None, 506),
])
def test_sslh_select_limit_never_exceeds_what_was_measured(listeners, version, measured):
    limit = t.sslh_select_max_sessions(listeners, version)
    assert measured - 3 <= limit <= measured


@pytest.mark.parametrize("var,key", [("mtg_bind_to", "bind_to"), ("mtg_stats_bind_to", "stats_bind_to")])
def test_mtg_binds_to_ip_addresses_only(var, key):
    """mtg's parser refuses a host name in a bind address ("host is not an IP address")."""
    errors = t.mtg_preflight(spec(**{key: "localhost:3129"}))
    assert [e.var for e in errors] == [var] and "binds to a name" in errors[0].msg
    assert t.mtg_preflight(spec(**{key: "[::1]:3129"})) == []
