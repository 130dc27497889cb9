import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tgproxy.stealth.plugins.filter import web


def spec(**kw):
    base = dict(domain="proxy.example.com", version="2.11.7", http_port=80, https_port=8443, https_bind=["127.0.0.1"],
                proxy_protocol=True, acme_enabled=True, acme_ca="letsencrypt", acme_email="ops@example.com")
    base.update(kw)
    return base


def test_good_spec_has_no_errors():
    assert web.web_preflight(spec()) == []


@pytest.mark.parametrize("kw,var", [
    (dict(domain=""), "caddy_domain"),
    (dict(version="2.6.2"), "caddy_version"),
    (dict(version="two"), "caddy_version"),
    (dict(acme_email="ops"), "caddy_acme_email"),
    (dict(acme_ca="http://ca.example.org/dir"), "caddy_acme_ca"),
    (dict(acme_ca="ftp://ca"), "caddy_acme_ca"),
    (dict(https_port=0), "caddy_https_port"),
    (dict(https_port=80), "caddy_https_port"),
    (dict(https_bind=[]), "caddy_https_bind"),
    (dict(https_bind=["localhost"]), "caddy_https_bind"),
    (dict(https_bind=["203.0.113.7"]), "caddy_https_bind"),
])
def test_bad_input_names_the_variable(kw, var):
    assert [e["var"] for e in web.web_preflight(spec(**kw))] == [var]


def test_plain_http_ca_needs_explicit_opt_in():
    assert web.web_preflight(spec(acme_ca="http://127.0.0.1:14000/dir", acme_ca_insecure=True)) == []


def test_public_bind_is_fine_without_proxy_protocol():
    assert web.web_preflight(spec(proxy_protocol=False, https_bind=["203.0.113.7"])) == []


def test_acme_directory_names():
    assert web.acme_directory("letsencrypt") == "https://acme-v02.api.letsencrypt.org/directory"
    assert web.acme_directory("https://ca.example/dir") == "https://ca.example/dir"


def test_caddy_release_layout():
    rel = web.caddy_release("2.11.7", "x86_64", "https://github.com/caddyserver/caddy/releases/download")
    assert rel["url"].endswith("/v2.11.7/caddy_2.11.7_linux_amd64.tar.gz")
    assert rel["checksums_url"].endswith("/v2.11.7/caddy_2.11.7_checksums.txt")
    assert rel["checksum_algorithm"] == "sha512"
    with pytest.raises(AnsibleFilterError):
        web.caddy_release("2.11.7", "riscv64", "https://x")
