# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The value parsers: one allowlist per kind of string that reaches a config.

Every string the collection writes into a generated file (haproxy.cfg,
nginx.conf, sslh's libconfig, a Caddyfile, mtg's TOML, a systemd unit, a
shell environment file) is checked here for its kind first: hostname, ALPN
token, backend name, address, URL, path, duration, size, environment key.
Each allowlist leaves out every metacharacter of those formats (newline,
quotes, ``;``, braces, white space, ``#``, backslash), so a value that passes
cannot end the value it stands in.

The validator (validator.py), the role preflights (topology.py), the filters
and the modules all read these; nothing keeps a second copy.  Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import ipaddress
import posixpath
import re

# --------------------------------------------------------------------------
# DNS names
# --------------------------------------------------------------------------
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def hostname_ok(name, min_labels=2):
    """True for a DNS name of ``min_labels`` or more valid labels (a trailing dot allowed), not an IP literal."""
    if not isinstance(name, str) or not name or len(name) > 253:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if len(labels) < min_labels or not all(_LABEL.match(label) for label in labels):
        return False
    return ip(name) is None


def is_hostname(name):
    """True for a DNS hostname usable as a TLS SNI (at least two labels)."""
    return hostname_ok(name, 2)


# --------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)\Z")
_LOOSE_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?[0-9A-Za-z.+~-]*\Z")


def parse_version(version):
    """A release version: '2.2.8' or 'v2.2.8' -> (2, 2, 8); ValueError otherwise."""
    match = _VERSION.match(str(version))
    if not match:
        raise ValueError("not a release version: %r" % (version,))
    return tuple(int(part) for part in match.groups())


def is_release_version(version):
    return bool(_VERSION.match(str(version)))


def loose_version(value):
    """An installed package's version ('2.8.16-1', '1.22c', '1.24.0') -> (major, minor, patch), or None."""
    match = _LOOSE_VERSION.match(str(value).strip())
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


# --------------------------------------------------------------------------
# Durations and sizes
# --------------------------------------------------------------------------
# the model's durations (validator, capacity): a number of seconds or parts
# of us/ms/s/m/h/d; mtg's are Go durations (ns..h, a unit on every part)
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
MODEL_UNITS = ("us", "ms", "s", "m", "h", "d")
GO_UNITS = ("ns", "us", "µs", "ms", "s", "m", "h")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_SIZE = re.compile(r"^\d+\s*(b|kb|kib|mb|mib|gb|gib)?\Z", re.IGNORECASE)


def parse_duration(value, go=False):
    """Seconds of a duration, or None when it is not one.

    ``go=False``: the model's form (a number of seconds, or 1h30m, 500ms, 2d).
    ``go=True``: a Go duration as mtg parses it (a unit on every part, no d).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and not go:
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value  # as written: the configs get it unchanged, so no white space and no case folding
    if not go and re.match(r"^\d+(\.\d+)?\Z", text):
        return float(text)
    units = GO_UNITS if go else MODEL_UNITS
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos or match.group(2) not in units:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos else None


def duration_seconds(value, go=False):
    """Seconds of a duration (1h, 90m, 3600s, 500ms, 1h30m, a number); ValueError when not one."""
    seconds = parse_duration(value, go)
    if seconds is None:
        raise ValueError("%r is not a duration" % (value,))
    return int(seconds) if seconds == int(seconds) else seconds


def is_go_duration(value):
    return parse_duration(value, go=True) is not None


def is_size(value):
    """A size as mtg reads it: 1024, 1mib, 16 kb."""
    return bool(_SIZE.match(str(value)))


# --------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------
_ALPN = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,63}\Z")
_INSTANCE_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}\Z")
_BACKEND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}\Z")
_UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
_DNS_PROVIDER = re.compile(r"^dns_[a-z0-9_]+\Z")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@(?!-)[A-Za-z0-9-]{1,63}(\.(?!-)[A-Za-z0-9-]{1,63})+\Z")
_SYSCTL_KEY = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+\Z")
_STAGE_TAG = re.compile(r"^[a-z][a-z0-9-]{0,22}\Z")


def is_alpn(value):
    """An ALPN protocol id as the routers match it (h2, http/1.1, acme-tls/1)."""
    return isinstance(value, str) and bool(_ALPN.match(value))


def is_instance_name(value):
    """An mtg instance's name: it makes the unit mtg-<name>, the files /etc/mtg/<name>.* and the backend mtg_<name>."""
    return isinstance(value, str) and bool(_INSTANCE_NAME.match(value))


_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?)?\Z")


def epoch_seconds(value):
    """Seconds since the epoch of a moment: an ISO 8601 date (its midnight, UTC), a date and time with Z or an
    offset (without one: UTC), or a number of seconds. None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _DATE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0))
    except ValueError:
        return None
    offset = 0
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return calendar.timegm(moment.timetuple()) - offset


def is_backend_name(value):
    return isinstance(value, str) and bool(_BACKEND_NAME.match(value))


def is_unix_name(value):
    return isinstance(value, str) and bool(_UNIX_NAME.match(value))


def is_dns_provider(value):
    return isinstance(value, str) and bool(_DNS_PROVIDER.match(value))


def is_env_key(value):
    """A shell environment variable name (a key of an environment file or a unit's Environment=)."""
    return isinstance(value, str) and bool(_ENV_KEY.match(value))


def is_email(value):
    return isinstance(value, str) and bool(_EMAIL.match(value))


def is_sysctl_key(value):
    return isinstance(value, str) and bool(_SYSCTL_KEY.match(value))


def is_stage_tag(value):
    return isinstance(value, str) and bool(_STAGE_TAG.match(value))


# --------------------------------------------------------------------------
# URLs and paths
# --------------------------------------------------------------------------
# a path and query of characters that cannot end or bend the value in a Caddyfile, TOML string, unit or
# argv (no white space, quotes, backslash, ;, #, braces, $, parentheses); % only as an escape (%HH), as Go's
# url.Parse wants it (mtg)
_URL = re.compile(r"^(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
                  r"(/(?:[A-Za-z0-9._~&+,=:@/?-]|%[0-9A-Fa-f]{2})*)?\Z")
# what a path in a generated file may hold: no white space, quotes, ;, #, braces, $ or backslash
_PATH = re.compile(r"^/[A-Za-z0-9._+@,=/-]*\Z")


def url_problem(url, schemes=("https",)):
    """Why ``url`` is not a whole URL of one of ``schemes`` (None when it is)."""
    if not isinstance(url, str):
        return "is not a string"
    match = _URL.match(url)
    if not match or match.group(1) not in schemes:
        return ("is not a whole %s URL: the scheme, a DNS name or IP address, an optional :port and a path "
                "without white space, quotes, backslashes, ;, # or braces" % " or ".join(s + "://" for s in schemes))
    host, port = match.group(2), match.group(3)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "has %s for a host, not an IPv6 address" % host
    elif ip(host) is None and not hostname_ok(host, 1):
        return "has %r for a host, neither a DNS name of valid labels nor an IP address" % host
    if port is not None and not 0 < int(port) < 65536:
        return "has port %s, out of range" % port
    return None


def is_url(url, schemes=("https",)):
    return url_problem(url, schemes) is None


def path_problem(path, under=(), where=None):
    """Why ``path`` is not an absolute, normalised path of plain characters below one of ``under`` (None when it is)."""
    text = path if isinstance(path, str) else ""
    if not text.startswith("/"):
        return "%r is not an absolute path." % (path,)
    if not _PATH.match(text):
        return "%r holds characters a config file cannot take unquoted (only letters, digits and . _ + @ , = / -)." % (text,)
    norm = posixpath.normpath(text)
    if norm != text or "/../" in text + "/":
        return "%r is not a normalised path." % (text,)
    if under and not any(norm.startswith(d) and len(norm) > len(d) for d in under):
        return "%r is outside %s." % (text, where or ", ".join(under))
    return None


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------
def ip(host):
    """The ipaddress object of an IP literal, or None."""
    try:
        return ipaddress.ip_address(host)
    except (ValueError, TypeError):
        return None


def split_hostport(value):
    """'127.0.0.1:3128' / '[::]:443' / 'host:80' -> (host, port); ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    # the host part is an IP literal or a DNS name: nothing that could end the value in a generated file
    match = re.match(r"^\[([0-9a-fA-F:.]+)\]:(\d+)\Z", value) or re.match(r"^([A-Za-z0-9._-]+):(\d+)\Z", value)
    if not match:
        raise ValueError("expected host:port or [ipv6]:port")
    host, port = match.group(1), int(match.group(2))
    if not 0 < port < 65536:
        raise ValueError("port %d out of range" % port)
    if ":" in host:
        ipaddress.IPv6Address(host)
    return host, port


def join_hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def is_loopback_host(host):
    if host == "localhost":
        return True
    addr = ip(host)
    return addr is not None and addr.is_loopback


def is_wildcard_host(host):
    return host in ("0.0.0.0", "::", "")


# Not reachable from the internet. Documentation ranges (203.0.113.0/24, ...)
# count as public here, unlike ipaddress' is_private.
PRIVATE_NETS = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "fc00::/7", "fe80::/10"))


def address_scope(host):
    """wildcard | loopback | private | public | name."""
    if host == "localhost":
        return "loopback"
    addr = ip(host)
    if addr is None:
        return "name"
    if str(addr) in ("0.0.0.0", "::"):
        return "wildcard"
    if addr.is_loopback:
        return "loopback"
    if any(addr in net for net in PRIVATE_NETS):
        return "private"
    return "public"


# --------------------------------------------------------------------------
# Kinds: what a role variable holds, checked before it reaches a config
# --------------------------------------------------------------------------
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:-]+)?\Z")
_UNIT = re.compile(r"^[A-Za-z0-9_.@-]{1,200}\Z")
_DIGEST = re.compile(r"^([0-9a-f]{64}|[0-9a-f]{128})\Z")
_SIMPLE_DURATION = re.compile(r"^[0-9]{1,9}(us|ms|s|m|h|d)?\Z")
_CALENDAR = re.compile(r"^[A-Za-z0-9*:,./~ -]{1,64}\Z")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f<>{}\"'\\`$;#]{0,120}\Z")
_TOKENS = re.compile(r"^[A-Za-z0-9._/:@\[\]-]+( [A-Za-z0-9._/:@\[\]-]+)*\Z")
_SEED = re.compile(r"^[A-Za-z0-9_-]{1,256}\Z")
_TLS_PROTOCOL = re.compile(r"^TLSv1(\.[0-3])?\Z")
_RELATIVE_PATH = re.compile(r"^(?!/)(?!.*\.\./)[A-Za-z0-9._+@,=/-]{1,255}\Z")


def _is_ip(value):
    return isinstance(value, str) and ip(value) is not None


def _is_cidr(value):
    try:
        ipaddress.ip_network(value, strict=False)
        return isinstance(value, str) and "/" in value
    except (ValueError, TypeError):
        return False


def _is_hostport(value):
    try:
        host, dummy = split_hostport(value)
    except (ValueError, TypeError):
        return False
    return ip(host) is not None or host == "localhost" or hostname_ok(host, 1)


def _is_upstream(value):
    """A reverse-proxy target: http(s)://host[:port] or host:port (Caddy takes no path in an upstream)."""
    if isinstance(value, str) and re.match(r"^https?://", value):
        rest = value.split("://", 1)[1]
        return is_url(value, ("http", "https")) and "/" not in rest
    return _is_hostport(value)


def _is_proxy_url(value):
    """mtg's upstream proxy: socks5://[user:password@]host:port."""
    match = isinstance(value, str) and re.match(r"^socks5://(?:[A-Za-z0-9._~%!$&()*+,=-]+:[A-Za-z0-9._~%!$&()*+,=-]*@)?(.+)\Z",
                                                value)
    return bool(match) and _is_hostport(match.group(1))


def _is_dns(value):
    """mtg's resolver (network.dns): an IPv4 address, udp://<IP>[:port] (an IPv6 one in brackets),
    tls://host[:port] or a DNS-over-HTTPS https:// URL."""
    if not isinstance(value, str):
        return False
    addr = ip(value)
    if addr is not None:
        return addr.version == 4  # mtg reads a bare value as a URL path: an IPv6 one needs udp://[...]
    if value.startswith("udp://"):
        rest = value[len("udp://"):]
        match = re.match(r"^(\[[0-9A-Fa-f:.]+\]|[0-9.]+)(?::([0-9]{1,5}))?\Z", rest)
        return bool(match) and ip(match.group(1).strip("[]")) is not None and (
            match.group(2) is None or 0 < int(match.group(2)) < 65536)
    if value.startswith("tls://"):
        rest = value[len("tls://"):]
        return _is_hostport(rest) or _is_host(rest) or ip(rest.strip("[]")) is not None and rest.startswith("[")
    return is_url(value, ("https",))


def _is_int_like(value):
    return not isinstance(value, bool) and (isinstance(value, int) or isinstance(value, str) and value.isdigit())


def _is_checksum(value, url_ok):
    """sha256:/sha512: and a hex digest (or, ``url_ok``, the URL of a checksums file), as get_url takes it."""
    if not isinstance(value, str) or ":" not in value:
        return False
    algorithm, rest = value.split(":", 1)
    return algorithm in ("sha256", "sha512") and (bool(_DIGEST.match(rest)) or url_ok and is_url(rest, ("http", "https")))


def _is_host(value):
    return _is_ip(value) or hostname_ok(value, 1)


# kind -> (test, what it is, how to write one)
KINDS = {
    "hostname": (is_hostname, "a DNS name", "write it like proxy.example.com"),
    "host": (_is_host, "an IP address or a DNS name", "write it like 127.0.0.1 or web.example.com"),
    "ip": (_is_ip, "an IP address", "write it like 127.0.0.1 or ::1"),
    "cidr": (_is_cidr, "a network in CIDR form", "write it like 127.0.0.1/32"),
    "hostport": (_is_hostport, "a host:port address", "write it like 127.0.0.1:3129 or [::1]:3129"),
    "release_version": (is_release_version, "a release version", "write it like 2.2.8"),
    "url": (lambda v: is_url(v, ("http", "https")), "an http(s):// URL",
            "write a whole URL without white space, quotes, ;, # or braces"),
    "https_url": (lambda v: is_url(v, ("https",)), "an https:// URL",
                  "write a whole https:// URL without white space, quotes, ;, # or braces"),
    "ca": (lambda v: hostname_ok(v, 1) or is_url(v, ("http", "https")), "a CA name or an ACME directory URL",
           "use letsencrypt, zerossl or an https:// directory URL"),
    "upstream": (_is_upstream, "an http(s):// URL or host:port", "write it like http://127.0.0.1:3000"),
    "proxy_url": (_is_proxy_url, "a socks5:// URL", "write it like socks5://user:pass@10.0.0.1:1080"),
    "dns": (_is_dns, "a resolver as mtg reads it", "write it like 9.9.9.9, udp://[2620:fe::fe], tls://dns.quad9.net "
            "or https://dns.quad9.net/dns-query"),
    "digest": (lambda v: isinstance(v, str) and bool(_DIGEST.match(v)), "a SHA-256 or SHA-512 hex digest",
               "paste the hex digest alone"),
    "checksum": (lambda v: _is_checksum(v, False), "a checksum as sha256:<hex> or sha512:<hex>",
                 "write it like sha256:c5d6...cf4"),
    "release_checksum": (lambda v: _is_checksum(v, True), "sha256: or sha512: and a hex digest or a checksums URL",
                         "write it like sha256:<hex> or sha256:https://.../checksums.txt"),
    "path": (lambda v: path_problem(v) is None, "an absolute path of plain characters",
             "use letters, digits and . _ + @ , = / - only, e.g. /var/www/site"),
    "relative_path": (lambda v: isinstance(v, str) and bool(_RELATIVE_PATH.match(v)), "a relative path",
                      "write it like mtg-2.2.8-linux-amd64/mtg"),
    "unix_name": (is_unix_name, "a user or group name", "write it like mtg"),
    "unit_name": (lambda v: isinstance(v, str) and bool(_UNIT.match(v)), "a systemd unit name", "write it like mtg-blue"),
    "package": (lambda v: isinstance(v, str) and bool(_PACKAGE.match(v)), "a Debian package name",
                "write it like haproxy or haproxy=2.6.12-1"),
    "duration": (lambda v: parse_duration(v) is not None, "a duration", "write it like 5s, 1h or 1h30m"),
    "go_duration": (is_go_duration, "a Go duration", "write it like 5s, 1m or 1h30m"),
    "simple_duration": (lambda v: isinstance(v, str) and bool(_SIMPLE_DURATION.match(v)),
                        "a duration of one number and unit", "write it like 5s or 30s"),
    "calendar": (lambda v: isinstance(v, str) and bool(_CALENDAR.match(v)), "a systemd calendar event",
                 "write it like daily or *-*-* 03:00:00"),
    "size": (is_size, "a size", "write it like 1mib"),
    "email": (is_email, "an e-mail address", "write it like admin@example.com"),
    "text": (lambda v: isinstance(v, str) and bool(_TEXT.match(v)), "one line of plain text",
             "use up to 120 characters, without quotes, backslashes, <, >, braces, $, ;, # or control characters"),
    "tokens": (lambda v: isinstance(v, str) and bool(_TOKENS.match(v)), "words of a directive",
               "use words of letters, digits and . _ / : @ [ ] - separated by single spaces"),
    "seed": (lambda v: isinstance(v, str) and bool(_SEED.match(v)), "a seed", "use letters, digits, _ and - only"),
    "tls_protocol": (lambda v: isinstance(v, str) and bool(_TLS_PROTOCOL.match(v)), "a TLS protocol name",
                     "write it like TLSv1.3"),
    "integer": (_is_int_like, "a whole number", "write digits only"),
    "env_key": (is_env_key, "an environment variable name", "write it like CF_Token"),
    "sysctl_key": (is_sysctl_key, "a sysctl key", "write it like net.core.somaxconn"),
    "dns_provider": (is_dns_provider, "an acme.sh DNS provider name", "write it like dns_cf"),
}


def kind_problem(kind, value, empty_ok=False):
    """None when ``value`` is a ``kind`` (see KINDS), else (what it should be, how to write one).

    ``kind`` may be ``list:<kind>`` (a list of them) or ``keys:<kind>`` (a mapping whose keys are).
    """
    if empty_ok and value in ("", None):
        return None
    if kind.startswith("list:") or kind.startswith("keys:"):
        outer, inner = kind.split(":", 1)
        if outer == "list" and not isinstance(value, (list, tuple)):
            return "a list of %s" % KINDS[inner][1], "write a YAML list"
        if outer == "keys" and not isinstance(value, dict):
            return "a mapping", "write a YAML mapping"
        for item in value:
            problem = kind_problem(inner, item)
            if problem:
                return problem[0] + (" in every item" if outer == "list" else " for every key"), problem[1]
        return None
    test, what, how = KINDS[kind]
    try:
        return None if test(value) else (what, how)
    except (TypeError, ValueError, AttributeError):
        return what, how
