# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report: one self-contained HTML page and a Markdown summary, built on the controller.

Input: one dict per host (playbooks/report.yml gathers them):
    name, topology (e.g. "sni_router haproxy"), web, versions {component: version}, secret (the mtg secret, any
    form), server (the address clients dial), port, doctor {passed, summary, rows [str]}, cert {not_after, days},
    counters {name: value}, instances [{name, domain, secret}] (further mtg instances serving on the host: each
    has links of its own, with the same server and port)
With redact=True every form of every secret is replaced and no QR code is drawn (a QR code would carry it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import html
from urllib.parse import quote

from ansible_collections.tgproxy.stealth.plugins.module_utils import topology

try:
    import segno
except ImportError:  # only needed for QR codes
    segno = None

REDACTED = "<redacted>"


def secret_forms(secret):
    """Every way a secret (or the key inside it) may be written: hex, base64 (url-safe and standard, padded or
    not), the key alone, and those URL-encoded."""
    parsed = topology.Secret.parse(secret)
    raw = bytes.fromhex(parsed.hex())
    forms = {parsed.hex(), parsed.hex().upper(), parsed.key.hex(), parsed.key.hex().upper(), str(secret).strip()}
    for encoded in (base64.urlsafe_b64encode(raw).decode(), base64.b64encode(raw).decode(),
                    base64.urlsafe_b64encode(parsed.key).decode(), base64.b64encode(parsed.key).decode()):
        forms.update({encoded, encoded.rstrip("=")})
    forms.update({quote(form, safe="") for form in list(forms)})
    return sorted((form for form in forms if form), key=len, reverse=True)


def redact(text, secrets):
    """text with every form of each secret replaced by REDACTED."""
    for secret in secrets:
        for form in secret_forms(secret):
            text = text.replace(form, REDACTED)
    return text


def host_links(host):
    return topology.proxy_links(host["secret"], host["server"], host.get("port", topology.PUBLIC_TLS_PORT))


def all_secrets(hosts):
    """Every secret in the report: each host's and each of its further instances'."""
    return [secret for host in hosts
            for secret in [host.get("secret")] + [i.get("secret") for i in host.get("instances") or []] if secret]


def link_sets(host):
    """(label, links) for the host's first mtg and each further instance, in that order."""
    out = []
    if host.get("secret"):
        out.append(("", host_links(host)))
    for instance in host.get("instances") or []:
        if instance.get("secret"):
            out.append((" %s (%s)" % (instance["name"], instance["domain"]),
                        host_links(dict(host, secret=instance["secret"]))))
    return out


def qr_svg(text):
    """An inline SVG QR code of text (no external resource)."""
    if segno is None:
        raise RuntimeError("the fleet report's QR codes need the Python package segno (pip install segno)")
    return segno.make(text, error="m").svg_inline(scale=4, border=4, title=None)


def _esc(value):
    return html.escape("" if value is None else str(value), quote=True)


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
.pass { color: #176b2c; font-weight: bold; }
.fail { color: #a31515; font-weight: bold; }
code, pre { font-family: monospace; font-size: 0.9em; word-break: break-all; white-space: pre-wrap; }
.qr svg { width: 220px; height: 220px; }
"""


def build_html(hosts, redact_secrets=False, title="tgproxy fleet report"):
    secrets = all_secrets(hosts)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>%s</title><style>%s</style></head><body>" % (_esc(title), STYLE),
           "<h1>%s</h1>" % _esc(title), '<table id="fleet"><tr><th>host</th><th>topology</th><th>web</th>'
           "<th>versions</th><th>doctor</th><th>certificate</th></tr>"]
    for host in hosts:
        doctor = host.get("doctor") or {}
        verdict = '<span class="pass">passed</span>' if doctor.get("passed") else '<span class="fail">failed</span>'
        cert = host.get("cert") or {}
        out.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
            _esc(host["name"]), _esc(host.get("topology")), _esc(host.get("web")),
            _esc(", ".join("%s %s" % item for item in sorted((host.get("versions") or {}).items()))),
            verdict, _esc("%s (%s days)" % (cert.get("not_after", "?"), cert.get("days", "?")))))
    out.append("</table>")
    for host in hosts:
        doctor = host.get("doctor") or {}
        out.append('<section class="host" id="host-%s"><h2>%s</h2>' % (_esc(host["name"]), _esc(host["name"])))
        for label, links in link_sets(host):
            out.append("<h3>Proxy links%s</h3><p><code>%s</code><br><code>%s</code></p>" % (
                _esc(label), _esc(links["tg"]), _esc(links["https"])))
            if not redact_secrets:
                out.append('<div class="qr" data-link="tg">%s</div>' % qr_svg(links["tg"]))
        out.append("<h3>Doctor</h3><p>%s</p>" % _esc(doctor.get("summary", "")))
        if doctor.get("rows"):
            out.append("<pre>%s</pre>" % _esc("\n".join(doctor["rows"])))
        counters = host.get("counters") or {}
        if counters:
            out.append("<h3>mtg counters</h3><table><tr><th>counter</th><th>value</th></tr>%s</table>" % "".join(
                "<tr><td>%s</td><td>%s</td></tr>" % (_esc(k), _esc(v)) for k, v in sorted(counters.items())))
        out.append("</section>")
    out.append("</body></html>")
    page = "\n".join(out) + "\n"
    return redact(page, secrets) if redact_secrets else page


def build_markdown(hosts, redact_secrets=False, title="tgproxy fleet report"):
    secrets = all_secrets(hosts)
    lines = ["# %s" % title, "", "| host | topology | web | doctor | certificate days |", "|---|---|---|---|---|"]
    for host in hosts:
        doctor = host.get("doctor") or {}
        lines.append("| %s | %s | %s | %s | %s |" % (
            host["name"], host.get("topology", ""), host.get("web", ""), "passed" if doctor.get("passed") else "FAILED",
            (host.get("cert") or {}).get("days", "?")))
    lines.append("")
    for host in hosts:
        for label, links in link_sets(host):
            lines.append("- %s%s: `%s`" % (host["name"], label, links["tg"]))
    text = "\n".join(lines) + "\n"
    return redact(text, secrets) if redact_secrets else text
