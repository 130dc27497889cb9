# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one model of a proxy host's topology.

Every fact about SNI names, ports, PROXY protocol and component versions lives
here.  Templates (through the filters), modules, the validator and the probes
read it; nothing else keeps a second copy.

The model is plain Python (no Ansible imports) so unit tests, filters and
modules share it unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress
import re

try:
    from ansible_collections.tgproxy.stealth.plugins.module_utils import findings, values
except ImportError:  # imported by path (tests, test bed tools)
    import findings  # type: ignore
    import values  # type: ignore

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover
    from urllib import quote  # type: ignore

# --------------------------------------------------------------------------
# Well-known ports of the topologies
# --------------------------------------------------------------------------
PUBLIC_TLS_PORT = 443
PUBLIC_HTTP_PORT = 80
MTG_INTERNAL_PORT = 3128
MTG_STATS_PORT = 3129
# blue/green: the second mtg instance behind the router (3130/3131: migrate.yml's new mtg's stats)
MTG_ALTERNATE_PORT = 3132
MTG_ALTERNATE_STATS_PORT = 3133
# further mtg instances (mtg.instances): each the next two free loopback ports from here
MTG_INSTANCE_PORT = 3140
# names an instance cannot take: the first instance's units and slots are mtg, mtg-green and mtg-routed
MTG_RESERVED_NAMES = ("main", "blue", "green", "routed")


def mtg_instance_backend(name):
    """The router backend of a further mtg instance (mtg.instances): mtg_<name>."""
    return "mtg_%s" % name


def mtg_instance_unit(name):
    """The systemd unit of a further mtg instance: mtg-<name> (the first instance is mtg, its second slot
    mtg-green)."""
    return "mtg-%s" % name


WEB_TLS_PORT = 8443
# the web server's plain-HTTP port on loopback when a router owns :80
WEB_INTERNAL_HTTP_PORT = 8080

# Capacity and timing defaults
MTG_DEFAULT_CONCURRENCY = 8192
ROUTER_DEFAULT_MAXCONN = 20000
# MTProto sessions sit idle for minutes: nothing on the path may cut them sooner.
MTPROTO_IDLE_SECONDS = 3600

TOPOLOGIES = ("mtg_direct", "sni_router")

# --------------------------------------------------------------------------
# mtg versions
# --------------------------------------------------------------------------
MTG_DEFAULT_VERSION = "2.2.8"
# [domain-fronting].host replaced [domain-fronting].ip after v2.2.8 (mtg #480).
# The names are not interchangeable: the wrong one is silently ignored and mtg
# falls back to resolving the secret's hostname - a fronting loop.
MTG_LAST_VERSION_WITH_FRONTING_IP = (2, 2, 8)
MTG_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}
MTG_PREFER_IP = ("prefer-ipv4", "prefer-ipv6", "only-ipv4", "only-ipv6")
# how mtg dials Telegram unless told otherwise (the role's mtg_prefer_ip default; a unit test keeps them equal)
MTG_DEFAULT_PREFER_IP = "prefer-ipv4"
# [defense.doppelganger] (mtg 2.2.0 on; the certificate flight's size is calibrated from 2.2.5): mtg fetches
# these https:// pages itself and sizes its FakeTLS ApplicationData record like theirs instead of drawing a
# random size. The default is the site's own page (mtg_doppelganger_default_urls); repeats and interval are
# mtg's own defaults (the role's mtg_doppelganger_* defaults; a unit test keeps them equal).
MTG_MIN_VERSION_WITH_DOPPELGANGER = (2, 2, 0)
MTG_DEFAULT_DOPPELGANGER_REPEATS = 10
MTG_DEFAULT_DOPPELGANGER_RAID_EACH = "6h"
# mtg reads repeats-per-raid as a 16-bit unsigned integer
MTG_MAX_DOPPELGANGER_REPEATS = 65535

SECRET_FAKETLS_BYTE = 0xEE
SECRET_KEY_LENGTH = 16


class TopologyError(findings.Finding):
    """A problem with a role's inputs (the one finding type, findings.py), naming the variable and the fix."""

    def __init__(self, var, msg, fix, code="TGP950"):
        severity, dummy, breaks, dummy2 = findings.ROLE_CHECKS[code]
        super(TopologyError, self).__init__(code, [var], msg, breaks=breaks, fix=fix, severity=severity)


# --------------------------------------------------------------------------
# Value parsers: module_utils/values.py (names kept here for the model's readers)
# --------------------------------------------------------------------------
parse_version = values.parse_version
is_hostname = values.is_hostname
split_hostport = values.split_hostport
join_hostport = values.join_hostport
is_loopback_host = values.is_loopback_host
is_wildcard_host = values.is_wildcard_host
PRIVATE_NETS = values.PRIVATE_NETS
address_scope = values.address_scope


# --------------------------------------------------------------------------
# Secrets and links
# --------------------------------------------------------------------------
class Secret(object):
    """An mtg FakeTLS secret: 0xee, a 16-byte key, then the fronting hostname."""

    def __init__(self, key, domain):
        if len(key) != SECRET_KEY_LENGTH:
            raise ValueError("secret key must be %d bytes" % SECRET_KEY_LENGTH)
        self.key = bytes(key)
        self.domain = domain

    @classmethod
    def parse(cls, text):
        """Parse the hex ('ee…') or base64url form, as mtg does."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the secret is empty")
        text = text.strip()
        try:
            raw = binascii.unhexlify(text)
            form = "hex"
        except (binascii.Error, TypeError, ValueError):
            candidate = text.rstrip("=").replace("+", "-").replace("/", "_")
            try:
                raw = base64.b64decode(candidate + "=" * (-len(candidate) % 4), altchars=b"-_", validate=True)
                form = "base64"
            except (binascii.Error, TypeError, ValueError):
                raise ValueError("the secret is neither hex nor base64url")
        if len(raw) < 2:
            raise ValueError("the secret is truncated")
        if raw[0] != SECRET_FAKETLS_BYTE:
            if raw[0] == 0xDD or len(raw) == SECRET_KEY_LENGTH:
                raise ValueError("this is a legacy (dd/plain) secret; mtg v2 only accepts FakeTLS 'ee' secrets")
            raise ValueError("the first byte is 0x%02x, expected 0xee (FakeTLS)" % raw[0])
        key, host = raw[1:1 + SECRET_KEY_LENGTH], raw[1 + SECRET_KEY_LENGTH:]
        if len(key) < SECRET_KEY_LENGTH:
            raise ValueError("the secret key is %d bytes, expected %d" % (len(key), SECRET_KEY_LENGTH))
        if key == b"\x00" * SECRET_KEY_LENGTH:
            raise ValueError("the secret key is all zeros")
        try:
            domain = host.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("the encoded domain is not ASCII")
        if not domain:
            raise ValueError("the secret encodes no domain")
        secret = cls(key, domain)
        secret.form = form
        return secret

    def raw(self):
        return bytes([SECRET_FAKETLS_BYTE]) + self.key + self.domain.encode("ascii")

    def hex(self):
        return binascii.hexlify(self.raw()).decode("ascii")

    def base64(self):
        return base64.urlsafe_b64encode(self.raw()).decode("ascii").rstrip("=")

    def describe(self):
        return {
            "kind": "faketls",
            "key": binascii.hexlify(self.key).decode("ascii"),
            "domain": self.domain,
            "domain_valid": is_hostname(self.domain),
            "hex": self.hex(),
            "base64": self.base64(),
            "form": getattr(self, "form", "hex"),
        }


def parse_secret(text):
    return Secret.parse(text)


def proxy_links(secret, server, port=PUBLIC_TLS_PORT):
    """tg:// and https://t.me links for a client, with the *public* port."""
    if not isinstance(secret, Secret):
        secret = Secret.parse(secret)
    query = "server=%s&port=%d&secret=%s" % (quote(str(server), safe=":"), int(port), secret.hex())
    return {
        "tg": "tg://proxy?" + query,
        "https": "https://t.me/proxy?" + query,
    }


# --------------------------------------------------------------------------
# mtg
# --------------------------------------------------------------------------
def mtg_fronting_key(version):
    """The spelling of [domain-fronting]'s address key for an mtg version."""
    return "ip" if parse_version(version) <= MTG_LAST_VERSION_WITH_FRONTING_IP else "host"


def mtg_arch(machine):
    try:
        return MTG_ARCHITECTURES[machine]
    except KeyError:
        raise TopologyError(
            "ansible_facts.architecture", "architecture %r has no mtg release build we support." % (machine,),
            "run on amd64 (x86_64) or arm64 (aarch64), or extend MTG_ARCHITECTURES in topology.py.")


def mtg_release(version, machine, base_url):
    """Names and URLs of an upstream mtg release (goreleaser layout)."""
    ver = "%d.%d.%d" % parse_version(version)
    arch = mtg_arch(machine)
    name = "mtg-%s-linux-%s" % (ver, arch)
    base = "%s/v%s" % (base_url.rstrip("/"), ver)
    return {
        "version": ver,
        "arch": arch,
        "name": name,
        "archive": name + ".tar.gz",
        "url": "%s/%s.tar.gz" % (base, name),
        "checksums_url": "%s/mtg-%s-checksums.txt" % (base, ver),
        "binary_in_archive": "%s/mtg" % name,
    }


def mtg_doppelganger_default_urls(domain):
    """The pages mtg calibrates its FakeTLS noise on when mtg_doppelganger_urls is unset: the site's own.

    The one place of this default (the role's mtg_doppelganger_urls is null, meaning "this").
    """
    return ["https://%s/" % domain]


def mtg_has_doppelganger(version):
    """True when this mtg release reads [defense.doppelganger] (older ones ignore the table silently)."""
    return parse_version(version) >= MTG_MIN_VERSION_WITH_DOPPELGANGER


def mtg_doppelganger(spec):
    """[defense.doppelganger] for these inputs, or None: an mtg before 2.2.0, or mtg_doppelganger_urls: []."""
    if not mtg_has_doppelganger(spec.get("version", MTG_DEFAULT_VERSION)):
        return None
    urls = spec.get("doppelganger_urls")
    urls = mtg_doppelganger_default_urls(spec["domain"]) if urls is None else list(urls)
    if not urls:
        return None
    repeats = spec.get("doppelganger_repeats")
    return {
        "urls": urls,
        "repeats-per-raid": MTG_DEFAULT_DOPPELGANGER_REPEATS if repeats is None else int(repeats),
        "raid-each": spec.get("doppelganger_raid_each") or MTG_DEFAULT_DOPPELGANGER_RAID_EACH,
        "drs": bool(spec.get("doppelganger_drs", False)),
    }


def doppelganger_url_problem(url):
    """Why ``url`` cannot stand in [defense.doppelganger].urls (None when it can)."""
    return values.url_problem(url, ("https",))


def _mtg_doppelganger_preflight(spec, version, err):
    urls = spec.get("doppelganger_urls")
    if urls is not None:
        if not isinstance(urls, (list, tuple)):
            err("mtg_doppelganger_urls", "%r is not a list of URLs." % (urls,),
                "write a list of https:// pages (e.g. ['https://example.com/']), [] to turn the calibration off, "
                "or leave it unset (null) for the site's own https://<mtg_domain>/.")
        else:
            for url in urls:
                problem = doppelganger_url_problem(url)
                if problem:
                    err("mtg_doppelganger_urls", "%r %s." % (url, problem),
                        "list pages as https://host[:port]/path, e.g. https://example.com/.")
            try:
                too_old = bool(urls) and not mtg_has_doppelganger(version)
            except ValueError:
                too_old = False  # an unreadable version is reported on its own
            if too_old:
                err("mtg_doppelganger_urls", "mtg_version %s has no [defense.doppelganger] (mtg reads it from "
                    "%d.%d.%d on and an older one would ignore it silently)."
                    % ((version,) + MTG_MIN_VERSION_WITH_DOPPELGANGER),
                    "leave mtg_doppelganger_urls unset or [] with this mtg_version, or set mtg_version to "
                    "%d.%d.%d or newer (default %s)." % (MTG_MIN_VERSION_WITH_DOPPELGANGER + (MTG_DEFAULT_VERSION,)))
    repeats = spec.get("doppelganger_repeats")
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool) or
                                not 0 < repeats <= MTG_MAX_DOPPELGANGER_REPEATS):
        err("mtg_doppelganger_repeats", "%r is not a number of fetches per raid from 1 to %d."
            % (repeats, MTG_MAX_DOPPELGANGER_REPEATS),
            "set a positive integer (mtg's default is %d)." % MTG_DEFAULT_DOPPELGANGER_REPEATS)
    drs = spec.get("doppelganger_drs")
    if drs is not None and not isinstance(drs, bool):
        err("mtg_doppelganger_drs", "%r is not a boolean." % (drs,), "set true or false.")


def mtg_topology(spec):
    """Normalise the mtg role's inputs into the topology facts.

    ``spec`` keys (the role variables without the ``mtg_`` prefix):
    topology, domain, version, bind_to, public_port, proxy_protocol_listener,
    fronting_host, fronting_port, fronting_proxy_protocol, prefer_ip,
    stats_bind_to, doppelganger_urls (None = the site's own page),
    doppelganger_repeats, doppelganger_raid_each, doppelganger_drs, ...
    Raises TopologyError on the first problem; use
    mtg_preflight() to collect all of them.
    """
    errors = mtg_preflight(spec)
    if errors:
        raise errors[0]
    topology = spec.get("topology", "mtg_direct")
    bind_host, bind_port = split_hostport(spec["bind_to"])
    public_port = int(spec.get("public_port") or (PUBLIC_TLS_PORT if topology == "sni_router" else bind_port))
    return {
        "topology": topology,
        "domain": spec["domain"],
        "version": "%d.%d.%d" % parse_version(spec.get("version", MTG_DEFAULT_VERSION)),
        "bind_host": bind_host,
        "bind_port": bind_port,
        "public_port": public_port,
        "needs_bind_capability": bind_port < 1024,
        "proxy_protocol_listener": bool(spec.get("proxy_protocol_listener")),
        "fronting_host": spec.get("fronting_host") or "127.0.0.1",
        "fronting_port": int(spec.get("fronting_port") or WEB_TLS_PORT),
        "fronting_proxy_protocol": bool(spec.get("fronting_proxy_protocol")),
        "fronting_key": mtg_fronting_key(spec.get("version", MTG_DEFAULT_VERSION)),
        # mtg measures the site's certificate flight at start ([defense.doppelganger]) and logs
        # "updated noise params" when its FakeTLS noise is calibrated
        "calibrates_noise": mtg_doppelganger(spec) is not None,
    }


def mtg_preflight(spec):
    """Every problem with the mtg inputs, as TopologyError objects (empty = fine)."""
    errors = []

    def err(var, msg, fix):
        errors.append(TopologyError(var, msg, fix, "TGP951"))

    topology = spec.get("topology", "mtg_direct")
    if topology not in TOPOLOGIES:
        err("mtg_topology", "unknown topology %r." % (topology,), "use one of: %s." % ", ".join(TOPOLOGIES))
    domain = spec.get("domain")
    if not is_hostname(domain):
        err("mtg_domain", "%r is not a valid hostname for the fronting domain." % (domain,),
            "set mtg_domain to the DNS name of this host's website, e.g. proxy.example.com.")
    version = spec.get("version", MTG_DEFAULT_VERSION)
    try:
        if parse_version(version) < (2, 0, 0):
            err("mtg_version", "mtg %s is v1; this collection configures mtg v2." % version,
                "set mtg_version to a v2 release, e.g. %s." % MTG_DEFAULT_VERSION)
    except ValueError:
        err("mtg_version", "%r is not a release version." % (version,), "use a form like %s." % MTG_DEFAULT_VERSION)
    secret = spec.get("secret")
    if secret:
        try:
            parsed = Secret.parse(secret)
        except ValueError as exc:
            # never echo the secret itself
            err("mtg_secret", "the secret is malformed (%s)." % exc,
                "leave mtg_secret empty to generate one on the host, or supply the output of "
                "'mtg generate-secret --hex <mtg_domain>'.")
        else:
            if domain and parsed.domain.lower() != str(domain).lower():
                err("mtg_secret", "the secret encodes the domain %r but mtg_domain is %r." % (parsed.domain, domain),
                    "generate the secret for %s ('mtg generate-secret --hex %s') or set mtg_domain to %s."
                    % (domain, domain, parsed.domain))
    prefer_ip = spec.get("prefer_ip", MTG_DEFAULT_PREFER_IP)
    if prefer_ip not in MTG_PREFER_IP:
        err("mtg_prefer_ip", "unknown value %r." % (prefer_ip,), "use one of: %s." % ", ".join(MTG_PREFER_IP))
    for var, key in (("mtg_bind_to", "bind_to"), ("mtg_stats_bind_to", "stats_bind_to")):
        value = spec.get(key)
        if key == "stats_bind_to" and not spec.get("stats_enabled", True):
            continue
        try:
            host, dummy = split_hostport(value)
        except (ValueError, TypeError) as exc:
            err(var, "%r is not a host:port bind address (%s)." % (value, exc),
                "write it as 127.0.0.1:3128, 0.0.0.0:443 or [::]:443.")
            continue
        if values.ip(host) is None:
            # mtg's own parser: "host is not an IP address"
            err(var, "%r binds to a name; mtg binds to IP addresses only." % (value,),
                "write the address, e.g. 127.0.0.1:%s." % value.rsplit(":", 1)[1])
    for var, key in (("mtg_public_ipv4", "public_ipv4"), ("mtg_public_ipv6", "public_ipv6")):
        value = spec.get(key)
        if value:
            try:
                addr = ipaddress.ip_address(value)
                if addr.version != int(var[-1]):
                    raise ValueError("wrong family")
            except ValueError:
                err(var, "%r is not an IPv%s address." % (value, var[-1]), "set it to this host's public address or leave it empty.")
    fronting_host = spec.get("fronting_host") or "127.0.0.1"
    try:
        if parse_version(version) <= MTG_LAST_VERSION_WITH_FRONTING_IP:
            ipaddress.ip_address(fronting_host)
    except ValueError:
        if values.is_release_version(version):
            err("mtg_fronting_host", "mtg %s only accepts an IP address in [domain-fronting].ip, not %r." % (version, fronting_host),
                "use the web server's IP address (127.0.0.1 for a local one), or an mtg release newer than 2.2.8.")
    for var, key in (("mtg_fronting_port", "fronting_port"), ("mtg_concurrency", "concurrency")):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0 or
                                  (key == "fronting_port" and value > 65535)):
            err(var, "%r is not a positive %s." % (value, "port number" if key.endswith("port") else "integer"),
                "set a positive integer.")
    for var, key in (("mtg_tolerate_time_skewness", "tolerate_time_skewness"),
                     ("mtg_doppelganger_raid_each", "doppelganger_raid_each")):
        value = spec.get(key)
        if value and not values.is_go_duration(value):
            err(var, "%r is not a Go duration." % (value,), "write it like 5s, 1m or 1h30m.")
    if spec.get("anti_replay_max_size") and not values.is_size(spec["anti_replay_max_size"]):
        err("mtg_anti_replay_max_size", "%r is not a size." % (spec["anti_replay_max_size"],), "write it like 1mib.")
    _mtg_doppelganger_preflight(spec, version, err)
    return errors


def _without_empty(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _without_empty(item)
            if item is None or item == {} or item == "":
                continue
            out[key] = item
        return out
    return value


def mtg_config(spec):
    """The mtg TOML document (a dict, secret excluded) for these inputs.

    The secret is added by the writer so that it never appears in a diff.
    """
    facts = mtg_topology(spec)
    fronting = {
        facts["fronting_key"]: facts["fronting_host"],
        "port": facts["fronting_port"],
        "proxy-protocol": facts["fronting_proxy_protocol"],
    }
    network = {
        "dns": spec.get("dns") or None,
        "proxies": list(spec.get("proxies") or []) or None,
        "timeout": {
            "tcp": spec.get("timeout_tcp") or None,
            "http": spec.get("timeout_http") or None,
            "idle": spec.get("timeout_idle") or None,
            "handshake": spec.get("timeout_handshake") or None,
        },
    }
    doc = {
        "bind-to": join_hostport(facts["bind_host"], facts["bind_port"]),
        "proxy-protocol-listener": facts["proxy_protocol_listener"],
        "prefer-ip": spec.get("prefer_ip", MTG_DEFAULT_PREFER_IP),
        "concurrency": spec.get("concurrency") or None,
        "tolerate-time-skewness": spec.get("tolerate_time_skewness") or None,
        "public-ipv4": spec.get("public_ipv4") or None,
        "public-ipv6": spec.get("public_ipv6") or None,
        "auto-update": False,
        "domain-fronting": fronting,
        "network": network,
        "defense": {
            "anti-replay": {
                "enabled": bool(spec.get("anti_replay_enabled", True)),
                "max-size": spec.get("anti_replay_max_size") or "1mib",
                "error-rate": float(spec.get("anti_replay_error_rate") or 0.001),
            },
            "blocklist": {
                "enabled": bool(spec.get("blocklist_urls")),
                "urls": list(spec.get("blocklist_urls") or []) or None,
                "update-each": spec.get("blocklist_update_each") or None,
            },
            "allowlist": {
                "enabled": bool(spec.get("allowlist_urls")),
                "urls": list(spec.get("allowlist_urls") or []) or None,
                "update-each": spec.get("allowlist_update_each") or None,
            },
            # FakeTLS noise sized like the listed pages' certificate flight (None: the table is left out)
            "doppelganger": mtg_doppelganger(spec),
        },
        "stats": {
            "prometheus": {
                "enabled": bool(spec.get("stats_enabled", True)),
                "bind-to": spec.get("stats_bind_to") if spec.get("stats_enabled", True) else None,
                "http-path": "/",
                "metric-prefix": "mtg",
            },
        },
    }
    return _without_empty(doc)


# --------------------------------------------------------------------------
# A minimal TOML writer for the documents above (tables, scalars, lists)
# --------------------------------------------------------------------------
def _toml_scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % text


def dump_toml(doc, header="", first_keys=()):
    """Render a dict as TOML; keys in ``first_keys`` come first at top level."""
    lines = [header.rstrip("\n")] if header else []

    def emit(table, path):
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
        if not path:
            scalars.sort(key=lambda kv: (kv[0] not in first_keys, first_keys.index(kv[0]) if kv[0] in first_keys else 0))
        if path and scalars:
            lines.append("")
            lines.append("[%s]" % ".".join(path))
        for key, value in scalars:
            lines.append("%s = %s" % (key, _toml_scalar(value)))
        for key, value in tables:
            emit(value, path + [key])

    emit(doc, [])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Web backend (Caddy)
# --------------------------------------------------------------------------
# What each router can do: read by the validator's checks (TGP107, TGP108, TGP512) and the route logic.
#   matches: route kinds it can tell apart; send_proxy: PROXY versions it sends; proxy_per_backend: whether the
#   PROXY setting is per backend (nginx stream's is per server: all backends at once); owns_http: whether it
#   takes :80 too; reload: how a configuration change is applied (hitless = open sessions kept)
ROUTER_CAPABILITIES = {
    "haproxy": {"matches": ("sni_exact", "sni_suffix", "alpn", "ssh", "default"), "send_proxy": ("none", "v1", "v2"),
                "proxy_per_backend": True, "owns_http": True, "reload": "hitless"},
    "nginx_stream": {"matches": ("sni_exact", "sni_suffix", "alpn", "default"), "send_proxy": ("none", "v1"),
                     "proxy_per_backend": False, "owns_http": True, "reload": "hitless"},
    "sslh": {"matches": ("sni_exact", "alpn", "ssh", "default"), "send_proxy": ("none",),
             "proxy_per_backend": True, "owns_http": False, "reload": "restart"},
}
# why a router cannot do a route kind (TGP512's message)
ROUTER_CANNOT = {
    ("nginx_stream", "ssh"): "nginx stream with ssl_preread cannot recognise SSH: those clients land on the default route",
    ("sslh", "sni_suffix"): "sslh matches exact SNI names only (sni_hostnames): a suffix would match nothing",
}

# sslh's flavours (the role's sslh_flavour; its default is the model's)
SSLH_FLAVOURS = ("fork", "select", "ev")
SSLH_DEFAULT_FLAVOUR = "fork"
FD_SETSIZE = 1024


def sslh_select_max_sessions(listeners, version=None):
    """Sessions sslh-select can hold: it keeps every descriptor in select()'s fd_set, and at descriptor
    FD_SETSIZE (1024) it aborts and drops every connection (glibc: "bit out of range"). Two descriptors
    per session (client and backend), after its own and its listeners'. Measured with
    tests/benchmark/sslh-select.sh: sslh 1.20 carried 510 sessions (one or two listeners) and aborted at the
    511th; sslh 2.1.4 carried 506 and aborted at the 507th. An unknown version counts as 2.x (the lower)."""
    parsed = values.loose_version(version) if version else None
    overhead = SSLH_SELECT_OWN_FDS_1 if parsed and parsed[0] < 2 else SSLH_SELECT_OWN_FDS_2
    return (FD_SETSIZE - overhead - int(listeners)) // 2


# descriptors sslh-select holds besides its listeners and sessions (stdio, syslog, ...), per major version
SSLH_SELECT_OWN_FDS_1 = 5
SSLH_SELECT_OWN_FDS_2 = 10


CADDY_DEFAULT_VERSION = "2.11.7"
# The proxy_protocol listener wrapper is built into Caddy from 2.7 on.
CADDY_MIN_VERSION = (2, 7, 0)
CADDY_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
ACME_DIRECTORIES = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt_staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "letsencrypt_test": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "zerossl": "https://acme.zerossl.com/v2/DV90",
}
# an e-mail address as it may stand in a Caddyfile or acme.sh's account: nothing that could end the value
# an ACME directory URL, whole: host (name or [IPv6]), port, path; nothing that could end the value in a
# generated file (whitespace, a line break, quotes, braces, ;, #)


def caddy_release(version, machine, base_url):
    """Names and URLs of an upstream Caddy release (goreleaser layout, sha512 sums)."""
    ver = "%d.%d.%d" % parse_version(version)
    try:
        arch = CADDY_ARCHITECTURES[machine]
    except KeyError:
        raise TopologyError("ansible_facts.architecture", "architecture %r has no Caddy release this role supports." % (machine,),
                            "run on amd64 (x86_64) or arm64 (aarch64).")
    base = "%s/v%s" % (base_url.rstrip("/"), ver)
    archive = "caddy_%s_linux_%s.tar.gz" % (ver, arch)
    return {
        "version": ver,
        "arch": arch,
        "archive": archive,
        "url": "%s/%s" % (base, archive),
        "checksums_url": "%s/caddy_%s_checksums.txt" % (base, ver),
        "checksum_algorithm": "sha512",
    }


def acme_directory(ca):
    """A CA name (letsencrypt, letsencrypt_staging, zerossl) or a directory URL."""
    return ACME_DIRECTORIES.get(ca, ca)


def web_preflight(spec, prefix="caddy"):
    """Problems with a web backend's inputs (role variables without the prefix).

    Shared by Caddy (prefix caddy) and the nginx web backend (prefix
    nginx_web, which adds ``proxy_allow`` and the certificate paths).
    """
    errors = []

    def err(var, msg, fix):
        errors.append(TopologyError("%s_%s" % (prefix, var), msg, fix, "TGP952"))

    if not is_hostname(spec.get("domain")):
        err("domain", "%r is not a valid hostname for the site." % (spec.get("domain"),),
            "set %s_domain to the site's DNS name (the same name as mtg_domain)." % prefix)
    version = spec.get("version", CADDY_DEFAULT_VERSION)
    if prefix == "caddy":
        try:
            if parse_version(version) < CADDY_MIN_VERSION:
                err("version", "Caddy %s has no proxy_protocol listener wrapper (built in from 2.7)." % version,
                    "set caddy_version to 2.7.0 or newer (default %s)." % CADDY_DEFAULT_VERSION)
        except ValueError:
            err("version", "%r is not a release version." % (version,), "use a form like %s." % CADDY_DEFAULT_VERSION)
    email = spec.get("acme_email")
    if email and not values.is_email(str(email)):
        err("acme_email", "%r is not an e-mail address." % (email,), "set a reachable address for the CA's expiry notices, or leave it empty.")
    if spec.get("acme_enabled", True):
        url = acme_directory(spec.get("acme_ca", "letsencrypt"))
        if not values.is_url(url, ("https",)):
            if not (values.is_url(url, ("http",)) and spec.get("acme_ca_insecure")):
                err("acme_ca", "%r is neither a known CA (%s) nor an https:// directory URL." % (url, ", ".join(sorted(ACME_DIRECTORIES))),
                    "use letsencrypt, letsencrypt_staging, zerossl or an https:// ACME directory URL "
                    "(a plain-http test CA needs %s_acme_ca_insecure=true)." % prefix)
    for var in ("http_port", "https_port"):
        value = spec.get(var)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
            err(var, "%r is not a port number." % (value,), "set a port between 1 and 65535.")
    if spec.get("http_port") == spec.get("https_port"):
        err("https_port", "http and https share port %r." % (spec.get("https_port"),), "give them different ports (80 and 8443).")
    binds = spec.get("https_bind") or []
    if not binds:
        err("https_bind", "the TLS listener has no address.", "list the addresses the front connects to, e.g. [127.0.0.1].")
    for addr in binds:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            err("https_bind", "%r is not an IP address." % (addr,), "write it like 127.0.0.1 or ::1.")
            continue
        if spec.get("proxy_protocol") and address_scope(addr) not in ("loopback", "private"):
            err("https_bind", "PROXY protocol is required on %s, a public address: anyone could connect and forge a "
                "client address." % addr,
                "bind the TLS listener only where the sender reaches it (127.0.0.1 for a local router or mtg).")
    if prefix == "caddy" and spec.get("http3"):
        _http3_preflight(spec, err)
    if prefix == "nginx_web":
        _nginx_web_preflight(spec, err)
    return errors


def _http3_preflight(spec, err):
    """HTTP/3 on the public UDP port: a public port number (never the internal TLS port), IP addresses."""
    port = spec.get("http3_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        err("http3_port", "%r is not a port number." % (port,), "set the site's public TLS port (443).")
    elif port in (spec.get("https_port"), spec.get("http_port")):
        err("http3_port", "%d is the web server's own %s port: Alt-Svc would send every client there."
            % (port, "internal TLS" if port == spec.get("https_port") else "HTTP"),
            "set the site's public TLS port (443), or caddy_http3: false.")
    binds = spec.get("http3_bind")
    if not isinstance(binds, list) or not binds:
        err("http3_bind", "%r is not a list of addresses." % (binds,), "list the public addresses, e.g. ['::'].")
        return
    for addr in binds:
        try:
            ipaddress.ip_address(str(addr))
        except ValueError:
            err("http3_bind", "%r is not an IP address." % (addr,), "write it like :: (every address) or 203.0.113.5.")


# --------------------------------------------------------------------------
# Web backend (nginx) with certificates from acme.sh or from files
# --------------------------------------------------------------------------
# Certificates and keys live only below these directories: a typo such as
# "/var/www/site/key.pem" would otherwise publish the private key.
CERT_DIRS = ("/etc/ssl/", "/etc/nginx/", "/etc/tgproxy/", "/etc/letsencrypt/")
CERT_SOURCES = ("acme_sh", "manual")

ACME_SH_DEFAULT_VERSION = "3.1.1"
# sha256 of the upstream tag archive (github.com/acmesh-official/acme.sh/archive/refs/tags/<v>.tar.gz)
ACME_SH_CHECKSUMS = {
    "3.1.1": "sha256:c5d623ac0af400e83cd676aefaf045228f60e9fc597fea5db4c3a5bd7f6bfcf4",
}
# acme.sh's own names for the well-known CAs (--server NAME)
ACME_SH_SERVERS = {
    "letsencrypt": "letsencrypt",
    "letsencrypt_test": "letsencrypt_test",
    "letsencrypt_staging": "letsencrypt_test",
    "zerossl": "zerossl",
}
ACME_SH_KEY_TYPES = ("ec-256", "ec-384", "2048", "3072", "4096")
ACME_SH_CHALLENGES = ("http-01", "dns-01")
ACME_SH_INSTALL_METHODS = ("auto", "release", "package")
_ACME_SH_BASE64 = re.compile(r"^__ACME_BASE64__START_(.*)__ACME_BASE64__END_$")


def cert_path_problem(path):
    """Why a certificate/key path is not acceptable, or None."""
    return values.path_problem(path, CERT_DIRS, "the certificate directories (%s)" % ", ".join(CERT_DIRS))


def _nginx_web_preflight(spec, err):
    hsts = spec.get("hsts_max_age", 0)
    if isinstance(hsts, bool) or not isinstance(hsts, int) and not str(hsts).isdigit() or int(hsts) < 0:
        err("hsts_max_age", "%r is not a number of seconds." % (hsts,),
            "set 0 (no Strict-Transport-Security, as a stock nginx site) or a max-age such as 31536000.")
    if spec.get("proxy_protocol") and not spec.get("proxy_allow"):
        err("proxy_allow", "PROXY protocol is on but no sender is trusted (set_real_ip_from would be empty): the access "
            "log would show the sender, not the client.",
            "list the senders' addresses, e.g. [127.0.0.1/32] for a local router or mtg.")
    for cidr in spec.get("proxy_allow") or []:
        try:
            net = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            err("proxy_allow", "%r is not an address or CIDR." % (cidr,), "write it like 127.0.0.1/32 or ::1/128.")
            continue
        if net.prefixlen == 0 or (net.version == 4 and net.prefixlen < 8):
            err("proxy_allow", "%s trusts PROXY headers from much of the internet." % cidr,
                "narrow it to the actual senders (the router or mtg), e.g. 127.0.0.1/32.")
    if spec.get("cert_source") not in CERT_SOURCES:
        err("cert_source", "%r is not a certificate source." % (spec.get("cert_source"),),
            "use acme_sh (issued and renewed by acme.sh) or manual (existing PEM files).")
    for var in ("ssl_certificate", "ssl_certificate_key"):
        problem = cert_path_problem(spec.get(var))
        if problem:
            err(var, problem, "keep certificates and keys below one of %s." % ", ".join(CERT_DIRS))
    if spec.get("ssl_certificate") and spec.get("ssl_certificate") == spec.get("ssl_certificate_key"):
        err("ssl_certificate_key", "the key and the certificate chain are the same file.", "give the key its own file.")


def acme_sh_release(version, base_url, checksum=""):
    """URL, checksum and top directory of an upstream acme.sh tag archive."""
    ver = "%d.%d.%d" % parse_version(version)
    checksum = checksum or ACME_SH_CHECKSUMS.get(ver)
    if not checksum:
        raise TopologyError("acme_sh_release_checksum", "acme.sh %s has no pinned checksum in this collection." % ver,
                            "set acme_sh_release_checksum to sha256:<hex> of the archive you reviewed, or use %s."
                            % ", ".join(sorted(ACME_SH_CHECKSUMS)))
    return {
        "version": ver,
        "url": "%s/%s.tar.gz" % (base_url.rstrip("/"), ver),
        "archive": "acme.sh-%s.tar.gz" % ver,
        "checksum": checksum,
        "top_dir": "acme.sh-%s" % ver,
    }


def acme_sh_server(ca):
    """acme.sh --server value: its name for a well-known CA, else the directory URL."""
    return ACME_SH_SERVERS.get(ca, ca)


def acme_sh_domain_dir(domain, keylength):
    """Directory acme.sh keeps a certificate in, below its home."""
    return "%s_ecc" % domain if str(keylength).startswith("ec-") else str(domain)


def acme_sh_conf(text):
    """Parse an acme.sh domain conf (KEY='value' lines, base64-wrapped values decoded)."""
    conf = {}
    for line in (text or "").splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)='(.*)'$", line.strip())
        if not match:
            continue
        value = match.group(2)
        wrapped = _ACME_SH_BASE64.match(value)
        if wrapped:
            value = base64.b64decode(wrapped.group(1)).decode("utf-8", "replace")
        conf[match.group(1)] = value
    return conf


def acme_sh_preflight(spec, prefix="acme_sh"):
    """Problems with the acme.sh role's inputs (role variables without the prefix)."""
    errors = []

    def err(var, msg, fix):
        errors.append(TopologyError("%s_%s" % (prefix, var), msg, fix, "TGP953"))

    domains = spec.get("domains") or []
    if not domains:
        err("domains", "no domain to issue a certificate for.", "set acme_sh_domains to the site's name (mtg_domain).")
    for name in domains:
        if not is_hostname(name):
            err("domains", "%r is not a valid hostname." % (name,), "list DNS names only, the site's name first.")
    email = spec.get("email")
    if email and not values.is_email(str(email)):
        err("email", "%r is not an e-mail address." % (email,), "set a reachable address for the CA's notices, or leave it empty.")
    server = acme_sh_server(spec.get("ca", "letsencrypt"))
    if server not in ACME_SH_SERVERS.values() and not values.is_url(server, ("https",)):
        if not (values.is_url(server, ("http",)) and spec.get("ca_insecure")):
            err("ca", "%r is neither a known CA (%s) nor an https:// directory URL." % (server, ", ".join(sorted(ACME_SH_SERVERS))),
                "use letsencrypt, letsencrypt_test, zerossl or an https:// ACME directory URL "
                "(a plain-http test CA needs %s_ca_insecure=true)." % prefix)
    if spec.get("challenge") not in ACME_SH_CHALLENGES:
        err("challenge", "%r is not a challenge acme.sh runs here." % (spec.get("challenge"),),
            "use http-01 (webroot behind :80) or dns-01 (a DNS provider).")
    if spec.get("challenge") == "dns-01" and not values.is_dns_provider(spec.get("dns_provider") or ""):
        err("dns_provider", "%r is not an acme.sh DNS provider name." % (spec.get("dns_provider"),),
            "name the provider's script, e.g. dns_cf, dns_nsupdate (see acme.sh's dnsapi/).")
    if str(spec.get("keylength")) not in ACME_SH_KEY_TYPES:
        err("keylength", "%r is not a key type acme.sh issues." % (spec.get("keylength"),), "use one of %s." % ", ".join(ACME_SH_KEY_TYPES))
    if spec.get("install_method") not in ACME_SH_INSTALL_METHODS:
        err("install_method", "%r is not an install method." % (spec.get("install_method"),), "use %s." % ", ".join(ACME_SH_INSTALL_METHODS))
    if not values.is_unix_name(str(spec.get("user") or "")):
        err("user", "%r is not a user name." % (spec.get("user"),), "use root or a system user name such as acme.")
    for var in ("key_file", "fullchain_file"):
        problem = cert_path_problem(spec.get(var))
        if problem:
            err(var, problem, "install certificates and keys below one of %s." % ", ".join(CERT_DIRS))
    return errors
