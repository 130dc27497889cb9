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
