"""Role metadata stays true: argument specs document exactly the defaults."""

import glob
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")))


def test_there_are_roles():
    assert "mtg" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_keys_equal_defaults(role):
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"))) or {}
    spec = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")))
    options = spec["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, option in options.items():
        assert option.get("description"), name
        if "default" in option:
            assert option["default"] == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"))) or {}
    assert all(name.startswith(role + "_") for name in defaults)


def test_role_defaults_follow_the_topology_model():
    """Role defaults are YAML and cannot import the model: this keeps them equal to it."""
    from ansible_collections.tgproxy.stealth.plugins.module_utils import topology as model

    mtg = yaml.safe_load(open(os.path.join(ROOT, "roles", "mtg", "defaults", "main.yml")))
    caddy = yaml.safe_load(open(os.path.join(ROOT, "roles", "caddy", "defaults", "main.yml")))
    assert mtg["mtg_version"] == model.MTG_DEFAULT_VERSION
    assert mtg["mtg_bind_to"] == "[::]:%d" % model.PUBLIC_TLS_PORT
    assert mtg["mtg_public_port"] == model.PUBLIC_TLS_PORT
    assert mtg["mtg_fronting_port"] == model.WEB_TLS_PORT
    assert mtg["mtg_concurrency"] == model.MTG_DEFAULT_CONCURRENCY
    assert mtg["mtg_stats_bind_to"] == "127.0.0.1:%d" % model.MTG_STATS_PORT
    assert mtg["mtg_prefer_ip"] == model.MTG_DEFAULT_PREFER_IP
    # null: the model's mtg_doppelganger_default_urls (the site's own page), kept in the model only
    assert mtg["mtg_doppelganger_urls"] is None
    assert mtg["mtg_doppelganger_repeats"] == model.MTG_DEFAULT_DOPPELGANGER_REPEATS
    assert mtg["mtg_doppelganger_raid_each"] == model.MTG_DEFAULT_DOPPELGANGER_RAID_EACH
    assert caddy["caddy_version"] == model.CADDY_DEFAULT_VERSION
    assert caddy["caddy_https_port"] == model.WEB_TLS_PORT
    assert caddy["caddy_http_port"] == model.PUBLIC_HTTP_PORT
    sslh = yaml.safe_load(open(os.path.join(ROOT, "roles", "sslh", "defaults", "main.yml")))
    assert sslh["sslh_flavour"] == model.SSLH_DEFAULT_FLAVOUR


def test_web_and_acme_defaults_follow_the_topology_model():
    from ansible_collections.tgproxy.stealth.plugins.module_utils import topology as model

    nginx = yaml.safe_load(open(os.path.join(ROOT, "roles", "nginx_web", "defaults", "main.yml")))
    acme = yaml.safe_load(open(os.path.join(ROOT, "roles", "acme_sh", "defaults", "main.yml")))
    assert nginx["nginx_web_https_port"] == model.WEB_TLS_PORT
    assert nginx["nginx_web_http_port"] == model.PUBLIC_HTTP_PORT
    assert acme["acme_sh_version"] == model.ACME_SH_DEFAULT_VERSION
    assert acme["acme_sh_version"] in model.ACME_SH_CHECKSUMS
    assert acme["acme_sh_keylength"] in model.ACME_SH_KEY_TYPES
    # the two roles meet at the same files and webroot by default
    assert acme["acme_sh_key_file"] == nginx["nginx_web_ssl_certificate_key"]
    assert acme["acme_sh_fullchain_file"] == nginx["nginx_web_ssl_certificate"]
    assert acme["acme_sh_webroot"] == nginx["nginx_web_acme_webroot"]
    for path in (acme["acme_sh_key_file"], acme["acme_sh_fullchain_file"]):
        assert model.cert_path_problem(path) is None


@pytest.mark.parametrize("role", ROLES)
def test_platforms_claimed_are_the_platforms_tested(role):
    """Role metadata names only what the Molecule scenarios run on (Debian 12 and 13; Ubuntu is untested)."""
    meta = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "meta", "main.yml")))
    shared = yaml.safe_load(open(os.path.join(ROOT, ".config", "molecule", "config.yml")))
    # (the reference site's host is an ordinary website, not a proxy platform)
    images = sorted(platform["image"] for platform in shared["platforms"] if "proxies" in platform["groups"])
    assert images == ["tgproxy-testbed/debian:12", "tgproxy-testbed/debian:13"]
    assert meta["galaxy_info"]["platforms"] == [{"name": "Debian", "versions": ["bookworm", "trixie"]}]
