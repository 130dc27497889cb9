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


# --- nginx web backend --------------------------------------------------------
def nginx_spec(**kw):
    base = dict(domain="proxy.example.com", http_port=80, https_port=8443, https_bind=["127.0.0.1"], proxy_protocol=True,
                proxy_allow=["127.0.0.1/32"], acme_enabled=False, cert_source="acme_sh",
                ssl_certificate="/etc/ssl/tgproxy/fullchain.pem", ssl_certificate_key="/etc/ssl/tgproxy/privkey.pem")
    base.update(kw)
    return base


def test_good_nginx_spec_has_no_errors():
    assert web.web_preflight(nginx_spec(), "nginx_web") == []
    assert web.web_preflight(nginx_spec(proxy_protocol=False, proxy_allow=[]), "nginx_web") == []
    assert web.web_preflight(nginx_spec(cert_source="manual", ssl_certificate="/etc/letsencrypt/live/x/fullchain.pem"),
                             "nginx_web") == []


@pytest.mark.parametrize("kw,var", [
    (dict(proxy_allow=[]), "nginx_web_proxy_allow"),
    (dict(proxy_allow=["0.0.0.0/0"]), "nginx_web_proxy_allow"),
    (dict(proxy_allow=["10.0.0.0/7"]), "nginx_web_proxy_allow"),
    (dict(proxy_allow=["loopback"]), "nginx_web_proxy_allow"),
    (dict(cert_source="letsencrypt"), "nginx_web_cert_source"),
    (dict(ssl_certificate="/var/www/site/fullchain.pem"), "nginx_web_ssl_certificate"),
    (dict(ssl_certificate_key="/etc/ssl/../../var/www/key.pem"), "nginx_web_ssl_certificate_key"),
    (dict(ssl_certificate_key="etc/ssl/key.pem"), "nginx_web_ssl_certificate_key"),
    (dict(ssl_certificate_key="/etc/ssl/"), "nginx_web_ssl_certificate_key"),
    (dict(ssl_certificate_key="/etc/ssl/tgproxy/fullchain.pem"), "nginx_web_ssl_certificate_key"),
    (dict(domain="proxy_example"), "nginx_web_domain"),
    (dict(https_bind=["203.0.113.7"]), "nginx_web_https_bind"),
])
def test_bad_nginx_input_names_the_variable(kw, var):
    assert [e["var"] for e in web.web_preflight(nginx_spec(**kw), "nginx_web")] == [var]


# --- acme.sh ------------------------------------------------------------------
def acme_spec(**kw):
    base = dict(domains=["proxy.example.com"], email="ops@example.com", ca="letsencrypt", ca_insecure=False,
                challenge="http-01", dns_provider="", keylength="ec-256", install_method="auto", user="acme",
                key_file="/etc/ssl/tgproxy/privkey.pem", fullchain_file="/etc/ssl/tgproxy/fullchain.pem")
    base.update(kw)
    return base


@pytest.mark.parametrize("kw", [
    {}, dict(ca="letsencrypt_test"), dict(ca="letsencrypt_staging"), dict(ca="zerossl"),
    dict(ca="https://acme.stealth.test:14000/dir"), dict(ca="http://127.0.0.1:4001/dir", ca_insecure=True),
    dict(challenge="dns-01", dns_provider="dns_nsupdate"), dict(keylength="2048"), dict(email=""),
    dict(user="root", install_method="release"), dict(domains=["a.example.com", "b.example.com"]),
])
def test_good_acme_spec_has_no_errors(kw):
    assert web.acme_sh_preflight(acme_spec(**kw)) == []


@pytest.mark.parametrize("kw,var", [
    (dict(domains=[]), "acme_sh_domains"),
    (dict(domains=["proxy example"]), "acme_sh_domains"),
    (dict(email="ops"), "acme_sh_email"),
    (dict(ca="http://acme.example.org/dir"), "acme_sh_ca"),
    (dict(ca="buypass"), "acme_sh_ca"),
    (dict(challenge="tls-alpn-01"), "acme_sh_challenge"),
    (dict(challenge="dns-01"), "acme_sh_dns_provider"),
    (dict(challenge="dns-01", dns_provider="cloudflare"), "acme_sh_dns_provider"),
    (dict(keylength="ec-521"), "acme_sh_keylength"),
    (dict(install_method="snap"), "acme_sh_install_method"),
    (dict(user="Acme User"), "acme_sh_user"),
    (dict(key_file="/root/key.pem"), "acme_sh_key_file"),
    (dict(fullchain_file="/var/www/site/fullchain.pem"), "acme_sh_fullchain_file"),
])
def test_bad_acme_input_names_the_variable(kw, var):
    assert [e["var"] for e in web.acme_sh_preflight(acme_spec(**kw))] == [var]


def test_acme_sh_release_uses_the_pinned_checksum_unless_given():
    rel = web.acme_sh_release("3.1.1", "https://github.com/acmesh-official/acme.sh/archive/refs/tags/")
    assert rel["url"] == "https://github.com/acmesh-official/acme.sh/archive/refs/tags/3.1.1.tar.gz"
    assert rel["checksum"].startswith("sha256:c5d623ac")
    assert rel["top_dir"] == "acme.sh-3.1.1"
    assert web.acme_sh_release("3.1.1", "http://m", "sha256:http://m/x.sha256")["checksum"] == "sha256:http://m/x.sha256"
    with pytest.raises(AnsibleFilterError, match="acme_sh_release_checksum"):
        web.acme_sh_release("3.0.9", "http://m")
    with pytest.raises(AnsibleFilterError):
        web.acme_sh_release("latest", "http://m")


def test_acme_sh_server_names_and_urls():
    assert web.acme_sh_server("letsencrypt_staging") == "letsencrypt_test"
    assert web.acme_sh_server("https://ca.example/dir") == "https://ca.example/dir"
    assert web.acme_directory("letsencrypt_test") == web.acme_directory("letsencrypt_staging")


def test_acme_sh_domain_dir():
    assert web.acme_sh_domain_dir("p.example.com", "ec-256") == "p.example.com_ecc"
    assert web.acme_sh_domain_dir("p.example.com", "2048") == "p.example.com"


def test_acme_sh_conf_decodes_wrapped_values():
    # captured from acme.sh 3.1.1 (<home>/<domain>_ecc/<domain>.conf)
    text = (
        "Le_Domain='proxy.stealth.test'\n"
        "Le_Alt='no'\n"
        "Le_Webroot='/var/www/acme-challenge'\n"
        "Le_API='https://acme.stealth.test:14000/dir'\n"
        "Le_Keylength='ec-256'\n"
        "Le_RealKeyPath='/etc/ssl/tgproxy/privkey.pem'\n"
        "Le_ReloadCmd='__ACME_BASE64__START_c3VkbyAtbiAvdXNyL2Jpbi9zeXN0ZW1jdGwgcmVsb2FkIG5naW54__ACME_BASE64__END_'\n"
        "not a setting\n"
    )
    conf = web.acme_sh_conf(text)
    assert conf["Le_ReloadCmd"] == "sudo -n /usr/bin/systemctl reload nginx"
    assert conf["Le_Alt"] == "no" and conf["Le_Keylength"] == "ec-256"
    assert web.acme_sh_conf("") == {}


# A value that passes a check reaches a generated file as it is: one that could end the value there (a line
# break, a quote, a brace, ;, #, white space) is rejected, and a trailing newline is no exception.
METACHARACTERS = ["\n", "\r", '"', "'", "{", "}", ";", "#", " ", "\t"]


@pytest.mark.parametrize("char", METACHARACTERS)
def test_a_ca_url_carrying_a_config_metacharacter_is_rejected(char):
    url = "https://acme.example.org/dir" + char + "admin 0.0.0.0:2019"
    assert [e["var"] for e in web.web_preflight(spec(acme_ca=url))] == ["caddy_acme_ca"]
    assert [e["var"] for e in web.acme_sh_preflight(acme_spec(ca=url))] == ["acme_sh_ca"]
    assert [e["var"] for e in web.web_preflight(spec(acme_ca="http://127.0.0.1/d" + char, acme_ca_insecure=True))] \
        == ["caddy_acme_ca"]


@pytest.mark.parametrize("char", METACHARACTERS)
def test_a_name_or_address_with_a_trailing_metacharacter_is_rejected(char):
    assert [e["var"] for e in web.web_preflight(spec(domain="proxy.example.com" + char))] == ["caddy_domain"]
    assert [e["var"] for e in web.web_preflight(spec(acme_email="ops@example.com" + char))] == ["caddy_acme_email"]
    assert [e["var"] for e in web.web_preflight(spec(version="2.11.7" + char))] == ["caddy_version"]
    assert [e["var"] for e in web.acme_sh_preflight(acme_spec(domains=["a.example.com" + char]))] \
        == ["acme_sh_domains"]
    assert [e["var"] for e in web.acme_sh_preflight(acme_spec(user="acme" + char))] == ["acme_sh_user"]
    assert [e["var"] for e in web.acme_sh_preflight(
        acme_spec(challenge="dns-01", dns_provider="dns_nsupdate" + char))] == ["acme_sh_dns_provider"]


@pytest.mark.parametrize("url", ["https://acme-v02.api.letsencrypt.org/directory", "https://acme.zerossl.com/v2/DV90",
                                 "https://acme.stealth.test:14000/dir", "https://[2001:db8::5]:14000/dir",
                                 "https://ca.example.org"])
def test_ordinary_ca_urls_pass(url):
    assert web.web_preflight(spec(acme_ca=url)) == []
    assert web.acme_sh_preflight(acme_spec(ca=url)) == []


H3 = dict(http3=True, http3_port=443, http3_bind=["::"])


def test_http3_on_the_public_port_passes():
    assert web.web_preflight(spec(**H3)) == []
    assert web.web_preflight(spec(**{**H3, "http3_bind": ["0.0.0.0", "2001:db8::5"]})) == []


@pytest.mark.parametrize("kw,var", [
    (dict(http3_port=8443), "caddy_http3_port"),   # the internal TLS port: Alt-Svc would name it
    (dict(http3_port=80), "caddy_http3_port"),
    (dict(http3_port=0), "caddy_http3_port"),
    (dict(http3_port="443"), "caddy_http3_port"),
    (dict(http3_bind=[]), "caddy_http3_bind"),
    (dict(http3_bind="::"), "caddy_http3_bind"),
    (dict(http3_bind=["localhost"]), "caddy_http3_bind"),
    (dict(http3_bind=[":: {"]), "caddy_http3_bind"),
])
def test_bad_http3_settings_are_rejected_by_name(kw, var):
    assert [e["var"] for e in web.web_preflight(spec(**{**H3, **kw}))] == [var]


@pytest.mark.parametrize("char", METACHARACTERS)
def test_an_http3_address_with_a_metacharacter_is_rejected(char):
    assert [e["var"] for e in web.web_preflight(spec(**{**H3, "http3_bind": ["::" + char]}))] == ["caddy_http3_bind"]


def test_http3_off_checks_nothing_of_it():
    assert web.web_preflight(spec(http3=False, http3_port=8443, http3_bind=[])) == []


@pytest.mark.parametrize("value", [0, 31536000, "300"])
def test_an_hsts_max_age_in_seconds_passes(value):
    assert "nginx_web_hsts_max_age" not in [e["var"] for e in web.web_preflight(spec(hsts_max_age=value), "nginx_web")]


@pytest.mark.parametrize("value", [-1, "1y", "300;", True, "31536000\n"])
def test_a_bad_hsts_max_age_is_rejected_by_name(value):
    assert "nginx_web_hsts_max_age" in [e["var"] for e in web.web_preflight(spec(hsts_max_age=value), "nginx_web")]
