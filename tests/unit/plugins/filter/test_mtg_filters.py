import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tgproxy.stealth.plugins.filter import mtg

KEY = bytes(range(1, 17))
GOOD = "ee" + KEY.hex() + b"proxy.example.com".hex()


def test_filter_map_is_complete():
    names = set(mtg.FilterModule().filters())
    assert names == {"mtg_secret_info", "mtg_proxy_links", "mtg_preflight", "mtg_facts", "mtg_config_doc", "mtg_release"}


def test_secret_info_and_links():
    assert mtg.mtg_secret_info(GOOD)["domain"] == "proxy.example.com"
    with pytest.raises(AnsibleFilterError):
        mtg.mtg_secret_info("zz")
    links = mtg.mtg_proxy_links(GOOD, "203.0.113.5", 443)
    assert "server=203.0.113.5&port=443" in links["tg"]


def test_preflight_filter_returns_dicts():
    errors = mtg.mtg_preflight({"domain": "x", "bind_to": "[::]:443", "stats_bind_to": "127.0.0.1:3129"})
    assert errors == [{"var": "mtg_domain", "msg": errors[0]["msg"], "fix": errors[0]["fix"]}]


def test_facts_and_config_raise_filter_errors():
    with pytest.raises(AnsibleFilterError, match="mtg_bind_to"):
        mtg.mtg_facts({"domain": "proxy.example.com", "bind_to": "nope", "stats_bind_to": "127.0.0.1:3129"})
    with pytest.raises(AnsibleFilterError):
        mtg.mtg_config_doc({"domain": "bad"})
    with pytest.raises(AnsibleFilterError):
        mtg.mtg_release("2.2.8", "sparc", "https://x")
