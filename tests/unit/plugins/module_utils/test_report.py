"""The fleet report builder: every field shown, QR codes that decode to exactly the host's link, redaction that
removes every form of every secret, a page with no external resource."""

import base64
import io
import re
from urllib.parse import quote

import pytest

from ansible_collections.tgproxy.stealth.plugins.module_utils import report
from ansible_collections.tgproxy.stealth.plugins.module_utils import topology

KEY_A, KEY_B = bytes(range(1, 17)), bytes(range(200, 216))
SECRET_A = "ee" + KEY_A.hex() + b"proxy-a.example.com".hex()
SECRET_B = "ee" + KEY_B.hex() + b"proxy-b.example.net".hex()
# a further mtg instance of host a, for its own domain
SECRET_C = "ee" + bytes(range(100, 116)).hex() + b"cdn.example.org".hex()


def hosts():
    return [
        {"name": "proxy-a.example.com", "topology": "mtg_direct", "web": "caddy",
         "versions": {"mtg": "2.2.8", "caddy": "2.11.7"}, "secret": SECRET_A, "server": "203.0.113.10", "port": 443,
         "doctor": {"passed": True, "summary": "all checks passed: 14 probes",
                    "rows": ["magic_sni | IDENTICAL | web alone: ..."]},
         "cert": {"not_after": "2027-02-01", "days": 64}, "counters": {"mtg_client_connections": 12},
         "instances": [{"name": "spring", "domain": "cdn.example.org", "secret": SECRET_C}]},
        # a host whose secret was written in base64url in the inventory
        {"name": "proxy-b.example.net", "topology": "sni_router haproxy", "web": "nginx",
         "versions": {"mtg": "2.2.8", "haproxy": "2.6.12"},
         "secret": base64.urlsafe_b64encode(bytes.fromhex(SECRET_B)).decode().rstrip("="),
         "server": "proxy-b.example.net", "port": 443,
         "doctor": {"passed": False, "summary": "doctor found 1 problem(s): caddy.service is not running"},
         "cert": {"not_after": "2026-12-05", "days": 6}, "counters": {}},
    ]


def every_form(secret):
    raw = bytes.fromhex(topology.Secret.parse(secret).hex())
    key = raw[1:17]
    forms = [raw.hex(), raw.hex().upper(), key.hex(), key.hex().upper()]
    for blob in (raw, key):
        for encoded in (base64.urlsafe_b64encode(blob).decode(), base64.b64encode(blob).decode()):
            forms += [encoded, encoded.rstrip("=")]
    return forms + [quote(form, safe="") for form in forms]


def test_every_host_and_field_is_shown():
    page = report.build_html(hosts())
    for text in ("proxy-a.example.com", "proxy-b.example.net", "sni_router haproxy", "2.11.7", "haproxy 2.6.12",
                 "all checks passed", "caddy.service is not running", "2027-02-01 (64 days)", "mtg_client_connections",
                 'class="fail"', 'class="pass"', "magic_sni | IDENTICAL"):
        assert text in page, text
    links = report.host_links(hosts()[0])
    assert links["tg"] == "tg://proxy?server=203.0.113.10&port=443&secret=" + SECRET_A
    # & escaped in HTML text, as it must be
    assert links["tg"].replace("&", "&amp;") in page
    summary = report.build_markdown(hosts())
    assert "| proxy-b.example.net | sni_router haproxy | nginx | FAILED | 6 |" in summary
    assert "`%s`" % links["tg"] in summary


def test_each_further_instance_has_links_and_a_qr_code_of_its_own():
    """A host with further mtg instances: the first one's links, then each instance's, named, with the host's server
    and port and the instance's secret."""
    link = report.host_links(dict(hosts()[0], secret=SECRET_C))["tg"]
    assert link == "tg://proxy?server=203.0.113.10&port=443&secret=" + SECRET_C
    page = report.build_html(hosts())
    assert page.count("<h3>Proxy links") == 3 and "<h3>Proxy links spring (cdn.example.org)</h3>" in page
    assert link.replace("&", "&amp;") in page and report.qr_svg(link) in page
    assert "- proxy-a.example.com spring (cdn.example.org): `%s`" % link in report.build_markdown(hosts())


def test_the_page_is_self_contained():
    page = report.build_html(hosts())
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page, re.I), "external resource"
    assert "<script" not in page.lower()


def test_each_qr_code_decodes_to_exactly_the_hosts_link():
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    segno = pytest.importorskip("segno")
    for host in hosts():
        link = report.host_links(host)["tg"]
        assert report.qr_svg(link) in report.build_html(hosts())
        # the same QR code as a bitmap, decoded by an independent reader
        png = io.BytesIO()
        segno.make(link, error="m").save(png, kind="png", scale=6, border=4)
        png.seek(0)
        assert [r.text for r in zxingcpp.read_barcodes(image_module.open(png))] == [link]


@pytest.mark.parametrize("builder", [report.build_html, report.build_markdown])
def test_redaction_removes_every_form_of_every_secret(builder):
    plain = builder(hosts())
    assert SECRET_A in plain
    redacted = builder(hosts(), redact_secrets=True)
    for secret in (SECRET_A, SECRET_B, SECRET_C):
        for form in every_form(secret):
            assert form not in redacted, form
    assert report.REDACTED in redacted or "&lt;redacted&gt;" in redacted
    # no QR code either: it would carry the secret
    assert "<svg" not in redacted
    # what is not secret stays
    assert "proxy-a.example.com" in redacted and "203.0.113.10" in redacted


def test_redact_catches_forms_written_anywhere():
    text = "hex %s key %s b64 %s pct %s" % (SECRET_A, KEY_A.hex(), base64.b64encode(bytes.fromhex(SECRET_A)).decode(),
                                            quote(base64.b64encode(bytes.fromhex(SECRET_A)).decode(), safe=""))
    out = report.redact(text, [SECRET_A])
    assert out.count(report.REDACTED) == 4, out
