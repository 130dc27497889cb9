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
    assert len(errors) == 1 and errors[0]["var"] == "mtg_domain" and errors[0]["code"] == "TGP951"
    assert errors[0]["vars"] == ["mtg_domain"] and errors[0]["msg"] and errors[0]["fix"] and errors[0]["breaks"]


def test_facts_and_config_raise_filter_errors():
    with pytest.raises(AnsibleFilterError, match="mtg_bind_to"):
        mtg.mtg_facts({"domain": "proxy.example.com", "bind_to": "nope", "stats_bind_to": "127.0.0.1:3129"})
    with pytest.raises(AnsibleFilterError):
        mtg.mtg_config_doc({"domain": "bad"})
    with pytest.raises(AnsibleFilterError):
        mtg.mtg_release("2.2.8", "sparc", "https://x")


def _role_spec(**overrides):
    """roles/mtg/vars/main.yml's __mtg_spec as Ansible templates it from the role defaults (and overrides)."""
    import os

    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    try:
        from ansible.template import trust_as_template
    except ImportError:  # ansible-core before 2.19 trusts every template
        def trust_as_template(value):
            return value

    def trusted(node):
        if isinstance(node, str):
            return trust_as_template(node)
        if isinstance(node, dict):
            return dict((key, trusted(value)) for key, value in node.items())
        if isinstance(node, list):
            return [trusted(value) for value in node]
        return node

    role = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "mtg")
    with open(os.path.join(role, "defaults", "main.yml")) as handle:
        variables = yaml.safe_load(handle)
    with open(os.path.join(role, "vars", "main.yml")) as handle:
        spec = yaml.safe_load(handle)["__mtg_spec"]
    variables.update(mtg_domain="proxy.stealth.test", **overrides)
    return Templar(loader=DataLoader(), variables=trusted(variables)).template(trusted(spec))


def test_role_spec_carries_the_doppelganger_settings():
    spec = _role_spec()
    assert spec["doppelganger_urls"] is None
    assert mtg.mtg_preflight(spec) == []
    assert mtg.mtg_config_doc(spec)["defense"]["doppelganger"] == {
        "urls": ["https://proxy.stealth.test/"], "repeats-per-raid": 10, "raid-each": "6h", "drs": False}
    spec = _role_spec(mtg_doppelganger_urls=["https://cdn.example.net/a.js"], mtg_doppelganger_repeats="3",
                      mtg_doppelganger_raid_each="12h", mtg_doppelganger_drs="true")
    assert mtg.mtg_config_doc(spec)["defense"]["doppelganger"] == {
        "urls": ["https://cdn.example.net/a.js"], "repeats-per-raid": 3, "raid-each": "12h", "drs": True}
    assert "doppelganger" not in mtg.mtg_config_doc(_role_spec(mtg_doppelganger_urls=[]))["defense"]
    errors = mtg.mtg_preflight(_role_spec(mtg_doppelganger_urls=["https://cdn.example.net/a;b"]))
    assert [error["var"] for error in errors] == ["mtg_doppelganger_urls"]
