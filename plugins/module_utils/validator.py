# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Topology consistency validator: the whole host's topology, every violation at once.

``validate(topology, resolver=None)`` returns a list of :class:`Finding`
(code, severity, vars, msg, breaks, fix), sorted by code.  ``CHECKS`` is the
catalogue of every code with its severity, what it catches, what breaks and
the fix; the README's "Topology validator" section is the same table for people.
``normalise(topology)`` returns the topology with every default filled in:
that is the document the roles read.  Plain Python (no Ansible imports), so
the module ``topology_validate``, the filters ``tgp_validate`` /
``tgp_topology_errors`` and the unit tests share it unchanged.  Facts that
are not specific to validation (ports, versions, secrets) come from
``topology.py``.

Schema
======

Variable names in findings are dotted paths into this document
(``mtg.fronting.proxy_protocol``, ``router.routes[1].value``).  Addresses
are ``host:port`` or ``[v6]:port``; lists of addresses also accept a single
string.  Durations are ``1h``, ``90m``, ``3600s``, ``500ms``, ``1h30m`` or a
bare number of seconds.  Unknown keys are errors (TGP005): a misspelt flag
would otherwise silently fall back to its default.

::

    kind: mtg_direct            # or sni_router
    domain: proxy.example.com   # required: fronting domain = SNI = secret's domain
    public_ipv4: null           # this host's public addresses (optional)
    public_ipv6: null
    proxy_protocol: <bool>      # default for every internal hop: true for
                                # mtg_direct (mtg -> web), false for sni_router
    mtg:
      version: "2.2.8"
      secret: null              # optional; hex or base64url, never echoed
      bind: "[::]:443"          # mtg_direct; "127.0.0.1:3128" for sni_router
      proxy_protocol_listener: <proxy_protocol>   # sni_router; false for mtg_direct
      fronting:
        host: <web.https_bind[0], wildcard -> loopback>   # 127.0.0.1
        port: <web.https_bind[0] port>                     # 8443
        proxy_protocol: <web.proxy_protocol>
        key: null               # the spelling in use (ip|host); null = the
                                # right one for mtg.version (topology.mtg_fronting_key)
      concurrency: 8192         # capacity declared: capacity.connections
      stats_enabled: true
      stats_bind: "127.0.0.1:3129"
      idle_timeout: null        # mtg [network.timeout].idle; null = mtg's default (1m)
    router:                     # sni_router only (TGP007 for mtg_direct)
      kind: haproxy             # haproxy | nginx_stream | sslh
      version: null             # e.g. "2.8.16", "1.24.0", "1.22c"
      listen: ["0.0.0.0:443", "[::]:443"]
      terminates_tls: false
      transparent: false        # sslh only: backends see the client's own address
                                # (IPv4 listeners, backends on this host over IPv4)
      maxconn: 20000            # null for sslh (no such limit); capacity declared:
                                # derived from capacity.connections (tuning.router_maxconn)
      timeouts: {client: 1h, server: 1h, tunnel: 1h, connect: 5s}
                                # nginx_stream: proxy_timeout = the smallest of
                                # client/server/tunnel; sslh: not used
      backends:                 # name -> {address, send_proxy}
        mtg: {address: <mtg.bind, wildcard -> loopback>, send_proxy: <receiver>}
        web: {address: <web.https_bind[0]>, send_proxy: <receiver>}
      routes:                   # in order (order matters for haproxy and sslh)
        - {match: sni_exact, value: <domain>, backend: mtg}
        - {match: default, backend: web}
                                # match: sni_exact | sni_suffix | alpn | ssh | default
      http:                     # the router owns :80 (haproxy, nginx_stream);
                                # null = web owns :80; always null for sslh
        listen: ["0.0.0.0:80", "[::]:80"]
        acme_passthrough_to: <web.http_bind[0]>     # where the router passes ALL of
                                # :80, at layer 4: the web server's HTTP listener
                                # answers every request itself (ACME HTTP-01 and
                                # its own redirect to https), as on any website.
                                # null = no web HTTP listener: the router answers
                                # :80 itself (its own redirect, no ACME)
        redirect_https: true    # only when the router answers :80 itself
                                # (acme_passthrough_to null): true = its 301 to
                                # https://<host><uri>, false = no redirect (an
                                # error status). With a passthrough the web
                                # server's redirect applies and this has no effect:
                                # a web server that owns :80 (mtg_direct, sslh)
                                # always redirects too
    web:
      kind: caddy               # caddy | nginx
      https_bind: ["127.0.0.1:8443"]
      http_bind: <"127.0.0.1:8080" when the router owns :80, else public :80:
                  caddy ["[::]:80"], nginx ["0.0.0.0:80", "[::]:80"]>
      proxy_protocol: <proxy_protocol>
      proxy_allow: ["127.0.0.1/32", "::1/128"]    # Caddy allow / nginx set_real_ip_from
      acme: {challenge: http-01}                  # http-01 | dns-01 | manual; other keys free
      cert_domains: [<domain>]
    other_services:             # other listeners on this host (port clashes,
      - name: sshd              # router backends such as SSH)
        bind: "0.0.0.0:22"      # string or list
        proxy_protocol: false   # whether it expects a PROXY header
    capacity:                   # optional; what the host must carry (module_utils/tuning.py)
      connections: 10000        # concurrent client connections
      new_per_second: 500       # burst of connection attempts per second
      memory_mb: null           # memory budget; checked against the connections
      keepalive_seconds: 300    # TCP keepalive idle time
      cpus: 1                   # the host's CPUs (filled in from facts)

The normalised document adds ``tuning``: everything ``tuning.derive`` makes
of ``capacity`` (null when none is declared).

Defaults of PROXY flags follow one rule: a receiver (mtg listener,
web, other service) defaults to the top-level ``proxy_protocol`` (the
other services to false); a sender (router backend, mtg fronting) defaults
to what its receiver expects.  Setting one side therefore never creates a
mismatch; a mismatch needs both sides set and disagreeing.  A router
backend sends ``v2`` by default, ``v1`` on nginx_stream (the only version it
speaks).

Addresses and listeners
=======================

What a wildcard bind occupies depends on the daemon: Go programs (mtg, Caddy)
open one dual-stack socket for either ``0.0.0.0`` or ``[::]``; nginx opens
``[::]`` as IPv6-only (``ipv6only=on`` is its default); HAProxy, sslh and
other services follow ``net.ipv6.bindv6only`` (usually 0, so ``[::]`` also
takes IPv4, but not guaranteed).  "This host" for loops and reachability is
loopback, the wildcard, ``public_ipv4``/``public_ipv6`` and ``domain``.
Private addresses are 10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16,
fc00::/7 and fe80::/10; everything else that is not loopback is public
(documentation ranges such as 203.0.113.0/24 count as public).

Unknown kinds
=============

An unknown topology kind (TGP001) leaves only the kind-independent checks
(domain, secret, mtg version and fronting key, stats, certificate); an
unknown router kind (TGP002) skips the router checks.  A value that fails
its own check (TGP004 and friends) is left out of the checks that need it,
so one typo yields one finding.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import socket
import time

from ansible_collections.tgproxy.stealth.plugins.module_utils import findings as findings_mod
from ansible_collections.tgproxy.stealth.plugins.module_utils import platforms
from ansible_collections.tgproxy.stealth.plugins.module_utils import topology as model
from ansible_collections.tgproxy.stealth.plugins.module_utils import tuning
from ansible_collections.tgproxy.stealth.plugins.module_utils import values

ERROR = "error"
WARNING = "warning"

ROUTER_KINDS = ("haproxy", "nginx_stream", "sslh")
# routers that send a name to the website while its mtg backend is down (HAProxy by its health checks, nginx stream
# by a backup server): a further mtg instance can be stopped at its retire_at on the host, between two runs
RETIRE_ON_HOST_ROUTERS = ("haproxy", "nginx_stream")
WEB_KINDS = ("caddy", "nginx")
SEND_PROXY = ("none", "v1", "v2")
ROUTE_MATCHES = ("sni_exact", "sni_suffix", "alpn", "ssh", "default")
ACME_CHALLENGES = ("http-01", "dns-01", "manual")
FRONTING_KEYS = ("ip", "host")

# MTProto sessions sit idle for minutes; the router must keep them (sni-router §7.3).
MTPROTO_IDLE_SECONDS = model.MTPROTO_IDLE_SECONDS
# mtg's own idle default is 1m; below it idle client connections are cut.
MTG_MIN_IDLE_SECONDS = 60
# SNI routing features used by the roles (sni-router-setup "Pin these or newer").
ROUTER_MIN_VERSIONS = {"haproxy": (1, 8, 0), "nginx_stream": (1, 11, 5)}
ROUTER_DEFAULT_MAXCONN = model.ROUTER_DEFAULT_MAXCONN
MTG_DEFAULT_CONCURRENCY = model.MTG_DEFAULT_CONCURRENCY
WEB_INTERNAL_HTTP_BIND = "127.0.0.1:%d" % model.WEB_INTERNAL_HTTP_PORT
DEFAULT_PROXY_ALLOW = ("127.0.0.1/32", "::1/128")
DEFAULT_TIMEOUTS = (("client", "1h"), ("server", "1h"), ("tunnel", "1h"), ("connect", "5s"))

_TOP_KEYS = ("kind", "domain", "public_ipv4", "public_ipv6", "proxy_protocol", "mtg", "router", "web", "other_services",
             "capacity", "platform", "site", "now")
_PLATFORM_KEYS = ("distribution", "version")
_SITE_KEYS = ("shared_with",)
_MTG_KEYS = ("version", "secret", "bind", "proxy_protocol_listener", "fronting", "concurrency", "stats_enabled",
             "stats_bind", "idle_timeout", "blue_green", "alternate_bind", "alternate_stats_bind", "slot", "instances",
             "instance_slots")
_INSTANCE_KEYS = ("name", "domain", "secret", "bind", "stats_bind", "alternate_bind", "alternate_stats_bind", "retire_at")
_FRONTING_KEYS = ("host", "port", "proxy_protocol", "key")
_ROUTER_KEYS = ("kind", "version", "listen", "terminates_tls", "transparent", "maxconn", "timeouts", "backends", "routes", "http",
                "flavour")
_HTTP_KEYS = ("listen", "acme_passthrough_to", "redirect_https")
_BACKEND_KEYS = ("address", "send_proxy")
_ROUTE_KEYS = ("match", "value", "backend")
_WEB_KEYS = ("kind", "https_bind", "http_bind", "proxy_protocol", "proxy_allow", "acme", "cert_domains")
_OTHER_KEYS = ("name", "bind", "proxy_protocol")

_GO = "go"            # mtg, Caddy: a wildcard is one dual-stack socket
_NGINX = "nginx"      # [::] is IPv6-only
_GENERIC = "generic"  # follows net.ipv6.bindv6only (usually dual-stack)
_ROUTER_DAEMON = {"haproxy": _GENERIC, "nginx_stream": _NGINX, "sslh": _GENERIC}
_WEB_DAEMON = {"caddy": _GO, "nginx": _NGINX}

_WILDCARDS = ("0.0.0.0", "::")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_MISSING = object()


def _check(severity, title, breaks, fix):
    return {"severity": severity, "title": title, "breaks": breaks, "fix": fix}


# --------------------------------------------------------------------------
# The catalogue: every code, its severity, what it catches, what breaks, fix
# --------------------------------------------------------------------------
CHECKS = {
    # -- schema ---------------------------------------------------------------
    "TGP001": _check(ERROR, "Unknown topology kind.",
                     "Nothing can be deployed: the roles do not know which services own :443.",
                     "Set kind to mtg_direct or sni_router."),
    "TGP002": _check(ERROR, "Unknown router kind.",
                     "No router can be configured, so :443 stays closed.",
                     "Set router.kind to haproxy, nginx_stream or sslh."),
    "TGP003": _check(ERROR, "Unknown web server kind.",
                     "No web server is configured: probes and browsers get no real website.",
                     "Set web.kind to caddy or nginx."),
    "TGP004": _check(ERROR, "Malformed value (type, address, CIDR, duration, choice, missing required field).",
                     "The rendered configuration would be rejected by the daemon or mean something else.",
                     "Write the value in the documented form (see the schema in validator.py)."),
    "TGP005": _check(ERROR, "Unknown key (usually a typo).",
                     "The setting is silently ignored and its default applies instead - e.g. a misspelt PROXY flag.",
                     "Fix the spelling or remove the key."),
    "TGP006": _check(ERROR, "mtg version is not a v2 release.",
                     "The collection configures mtg v2 (FakeTLS, TOML); v1 or an unparseable version cannot be installed.",
                     "Set mtg.version to a v2 release such as %s." % model.MTG_DEFAULT_VERSION),
    "TGP007": _check(ERROR, "Section that the chosen kind does not use.",
                     "The section is ignored; what it describes is not deployed (e.g. a router in mtg_direct).",
                     "Remove the section or change the kind."),
    "TGP008": _check(ERROR, "Malformed mtg secret.",
                     "mtg refuses to start, or clients get links that never connect.",
                     "Leave mtg.secret empty to generate one, or use 'mtg generate-secret --hex <domain>'."),
    # -- PROXY protocol -------------------------------------------------------
    "TGP101": _check(ERROR, "PROXY protocol on one side only: router -> mtg.",
                     "The first connection hangs and times out: one side waits for or chokes on the PROXY header; "
                     "Telegram clients cannot connect.",
                     "Make router.backends.<mtg>.send_proxy and mtg.proxy_protocol_listener agree "
                     "(both off, or v2/v1 with the listener on)."),
    "TGP102": _check(ERROR, "PROXY protocol on one side only: router -> web.",
                     "Browsers and probes hang or get a TLS error from the website: the host stops looking like "
                     "an HTTPS site.",
                     "Make the web backend's send_proxy and web.proxy_protocol agree."),
    "TGP103": _check(ERROR, "PROXY protocol on one side only: mtg fronting -> web.",
                     "Domain fronting hangs or fails: probes with the right SNI but no valid secret get no website "
                     "- exactly what active probing looks for.",
                     "Make mtg.fronting.proxy_protocol and web.proxy_protocol agree."),
    "TGP104": _check(ERROR, "mtg expects a PROXY header from clients (mtg_direct).",
                     "Clients connect straight to mtg and never send a PROXY header: every connection hangs.",
                     "Set mtg.proxy_protocol_listener: false in mtg_direct."),
    "TGP105": _check(ERROR, "Web server accepts PROXY protocol but trusts no sender.",
                     "Caddy >= 2.8 ignores every header (all clients appear as 127.0.0.1); nginx never applies the "
                     "real address. Real client IPs - the reason to enable PROXY - are lost.",
                     "List the senders (router, mtg) in web.proxy_allow, e.g. 127.0.0.1/32 and ::1/128."),
    "TGP106": _check(ERROR, "Web PROXY allow-list does not cover a real sender.",
                     "Caddy 2.7 rejects the connection from that sender (site or fronting path breaks); newer Caddy "
                     "and nginx drop the real client address.",
                     "Add the sender's address (loopback when router/mtg connect over 127.0.0.1) to web.proxy_allow."),
    "TGP107": _check(ERROR, "sslh asked to send PROXY protocol.",
                     "Distribution sslh has no PROXY protocol support: the receiver waits for a header that never "
                     "comes.",
                     "Set send_proxy: none on every sslh backend and turn PROXY off on the receivers, or use "
                     "haproxy/nginx_stream."),
    "TGP108": _check(ERROR, "nginx_stream PROXY settings it cannot express.",
                     "nginx stream's proxy_protocol is per server (all upstreams at once) and speaks only v1: "
                     "the rendered config would send PROXY to a backend that does not expect it, or not at all.",
                     "Give every nginx_stream backend the same send_proxy, none or v1."),
    "TGP109": _check(ERROR, "PROXY protocol on one side only: router -> other service.",
                     "Connections to that service hang or fail at its first read.",
                     "Make the backend's send_proxy and other_services[].proxy_protocol agree."),
    # -- router -------------------------------------------------------------
    "TGP201": _check(ERROR, "Router terminates TLS.",
                     "The router shows its own certificate: mtg's FakeTLS handshake breaks and domain fronting is lost "
                     "(sni-router §7.1).",
                     "Route at layer 4 (HAProxy mode tcp, nginx ssl_preread): set router.terminates_tls: false."),
    "TGP202": _check(ERROR, "Router timeout shorter than MTProto's idle period.",
                     "Idle MTProto sessions are cut (default L7 timeouts are 30-60s); clients reconnect constantly "
                     "(sni-router §7.3).",
                     "Set router.timeouts client, server and tunnel to at least 1h."),
    "TGP203": _check(ERROR, "mtg idle timeout shorter than mtg's default (1m).",
                     "mtg drops idle client connections before Telegram's keepalive arrives.",
                     "Leave mtg.idle_timeout empty (mtg's default) or set it to 1m or more."),
    "TGP204": _check(WARNING, "mtg concurrency above the router's maxconn.",
                     "Under load the router stops accepting at maxconn while mtg still has room: clients queue and "
                     "time out, and the website goes down with them.",
                     "Raise router.maxconn above mtg.concurrency (plus web traffic) or lower mtg.concurrency."),
    "TGP205": _check(ERROR, "Router version without SNI routing.",
                     "HAProxy < 1.8 and nginx < 1.11.5 lack the SNI preread features the configs use.",
                     "Install HAProxy >= 1.8 / nginx >= 1.11.5 (tested: 2.8.16 / 1.24.0)."),
    "TGP206": _check(ERROR, "Router has no default route.",
                     "Probes and browsers with any other SNI (or none) are dropped: the host no longer looks like a "
                     "website.",
                     "Add a route {match: default, backend: <web>}."),
    "TGP207": _check(ERROR, "Transparent mode on a router other than sslh.",
                     "Only sslh's transparent mode is configured here; HAProxy and nginx_stream would still connect "
                     "from their own address, and the backends would never see the client's.",
                     "Set router.transparent: false and pass the client address with PROXY protocol "
                     "(router.backends.<name>.send_proxy), or use router.kind: sslh."),
    "TGP208": _check(ERROR, "sslh transparent mode with an IPv6 listener.",
                     "sslh binds each backend connection to the client's own address: an IPv6 client (or an IPv4 "
                     "one accepted by a dual-stack [::] socket) cannot connect from there to an IPv4 backend, so "
                     "it gets a closed connection.",
                     "List only IPv4 listeners in router.listen (e.g. [\"0.0.0.0:443\"]), or set "
                     "router.transparent: false."),
    "TGP209": _check(ERROR, "sslh transparent mode with a backend that is not on IPv4 loopback.",
                     "The backends' replies come back to sslh by one policy route, for packets from 127.0.0.0/8 "
                     "(which can never leave the host, so nothing else is rerouted): a backend elsewhere, on "
                     "IPv6 or on a public address of this host answers the client directly or not at all.",
                     "Point router.backends.<name>.address at 127.0.0.1 and have the service listen there (or "
                     "on 0.0.0.0), or set router.transparent: false."),
    # -- listeners and exposure ------------------------------------------------
    "TGP210": _check(ERROR, "sslh-select sized above what select() can hold.",
                     "sslh-select keeps every descriptor in select()'s set: at descriptor 1024 it aborts and drops "
                     "every connection on the host at once (measured: 506 sessions on sslh 2.1, 510 on 1.20).",
                     "Use sslh_flavour: ev (or fork), or declare capacity.connections within the limit."),
    "TGP211": _check(WARNING, "sslh-select without a declared capacity.",
                     "Nothing keeps the sessions under select()'s limit (506 sessions on sslh 2.1): one busy evening aborts sslh "
                     "and every connection with it.",
                     "Use sslh_flavour: ev (or fork), or declare tgproxy_capacity.connections within the limit."),
    "TGP301": _check(ERROR, "mtg reachable from the internet behind an SNI router.",
                     "mtg answers on its own port, bypassing the router: a scan finds a FakeTLS endpoint "
                     "(sni-router §7.5, §8 step 5).",
                     "Bind mtg to loopback, e.g. mtg.bind: 127.0.0.1:3128."),
    "TGP302": _check(WARNING, "Internal endpoint on a private address.",
                     "Reachable from the private network (VPC, containers); fine only if that network is trusted.",
                     "Bind it to loopback unless something on the private network needs it."),
    "TGP303": _check(ERROR, "Public entry point bound to loopback only.",
                     "Nobody outside the host can connect: the proxy and the website are unreachable.",
                     "Bind the entry point (mtg.bind in mtg_direct, router.listen) to 0.0.0.0/[::] or a public "
                     "address."),
    "TGP304": _check(WARNING, "Public TLS entry point not on port 443.",
                     "TLS on an unusual port stands out to DPI and to probes; links must carry the odd port.",
                     "Listen on port 443."),
    "TGP305": _check(ERROR, "Stats (Prometheus) endpoint on a public address.",
                     "Anyone can read per-client counters, and the open port fingerprints the host as mtg.",
                     "Bind mtg.stats_bind to loopback (127.0.0.1:3129) or disable stats."),
    "TGP306": _check(WARNING, "Web TLS listener reachable from the internet.",
                     "Probes can reach the website directly on its internal port and compare it with :443.",
                     "Bind web.https_bind to loopback; only the router or mtg needs it."),
    "TGP310": _check(ERROR, "No IPv6 listener although the host has public IPv6.",
                     "IPv6 clients (and Let's Encrypt, which prefers AAAA) cannot connect.",
                     "Add a [::]:<port> listener."),
    "TGP311": _check(ERROR, "No IPv4 listener.",
                     "IPv4 clients are refused (nginx opens [::] as IPv6-only).",
                     "Add 0.0.0.0:<port> next to [::]:<port>."),
    "TGP312": _check(WARNING, "IPv4 reachable only through a [::] listener.",
                     "Works only while net.ipv6.bindv6only=0; hosts or namespaces with 1 silently miss IPv4 "
                     "(sni-router §7.4).",
                     "List both 0.0.0.0:<port> and [::]:<port>."),
    "TGP320": _check(ERROR, "Two services on the same port.",
                     "The second service fails to start with 'address already in use' (a wildcard bind overlaps "
                     "every specific address of its family).",
                     "Move one of them to another port or address."),
    "TGP330": _check(ERROR, "Blue/green mtg where nothing can switch to the second instance.",
                     "A second mtg would get no connection (no router in front, or one whose only way to change "
                     "its backend is a restart that closes every session), or a setting of it is ignored.",
                     "Leave mtg.blue_green unset: it is on behind HAProxy and nginx stream and off elsewhere."),
    "TGP340": _check(ERROR, "Further mtg instances where nothing routes to them.",
                     "mtg owns :443 with one secret; a second mtg would get no connection.",
                     "Remove mtg.instances, or put a router in front (kind: sni_router; playbooks/migrate.yml)."),
    "TGP341": _check(ERROR, "Two mtg instances with one domain or one name.",
                     "The router can send an SNI to one instance only: the other's links never reach it; two "
                     "instances of one name would share a unit and its files.",
                     "Give each instance its own domain (and secret) and its own name."),
    "TGP343": _check(ERROR, "Further mtg instances with a web server that serves one domain.",
                     "Each instance's domain needs a certificate and a website of its own; the nginx web backend "
                     "(acme.sh or a manual certificate) is set up for the first domain only: the further domains "
                     "would get another name's certificate, which gives them away.",
                     "Use Caddy as the web server (tgproxy_web_backend: caddy) for several instances."),
    "TGP344": _check(WARNING, "A further mtg instance retires only at the first run after its retire_at.",
                     "sslh has no fallback for a stopped backend: stopping the instance on the host at retire_at "
                     "would give its domain an error instead of the website, so the host leaves it serving (old "
                     "links keep working) until a run after retire_at retires it.",
                     "Run the playbook soon after retire_at (a cron job or timer on the controller), or put HAProxy "
                     "or nginx stream in front, where the host stops it at retire_at itself."),
    "TGP342": _check(ERROR, "A retired mtg instance's domain still goes to an mtg.",
                     "Its links keep working past the retirement the inventory asks for, or land on another "
                     "instance, which fronts them as a second fingerprint.",
                     "Route the retired domain to the website (drop its route: the default route takes it), or "
                     "move retire_at."),
    # -- mtg domain fronting --------------------------------------------------
    "TGP401": _check(ERROR, "mtg fronting key spelled for another mtg version.",
                     "mtg ignores the key and resolves the secret's domain instead - which points back at this "
                     "host: a fronting loop (setup-without-sni-router, Version note).",
                     "Use [domain-fronting].ip up to mtg 2.2.8 and .host after (leave mtg.fronting.key empty to "
                     "derive it)."),
    "TGP402": _check(ERROR, "Hostname as fronting address on mtg <= 2.2.8.",
                     "[domain-fronting].ip accepts only an IP address; mtg falls back to DNS of the secret's domain: "
                     "a fronting loop.",
                     "Use the web server's IP (127.0.0.1), or an mtg release newer than 2.2.8."),
    "TGP403": _check(ERROR, "Fronting target is this host's public entry point (fronting loop).",
                     "Every probe is relayed back into the router/mtg, forever: connections pile up until limits "
                     "hit and the website never answers.",
                     "Front to the web server's internal TLS listener, e.g. 127.0.0.1:8443."),
    "TGP404": _check(ERROR, "Fronting target is not the web server's TLS listener.",
                     "Probes that fail the FakeTLS check get no website, or someone else's certificate.",
                     "Point mtg.fronting host/port at web.https_bind."),
    # -- domain, secret, SNI routes -------------------------------------------
    "TGP501": _check(ERROR, "Domain is not a valid hostname.",
                     "No certificate, no SNI route and no valid secret can be built for it.",
                     "Set domain to this host's DNS name, e.g. proxy.example.com."),
    "TGP502": _check(ERROR, "The secret's domain is not a valid hostname.",
                     "Clients send an SNI no router matches and no certificate covers.",
                     "Generate the secret for the domain: 'mtg generate-secret --hex <domain>'."),
    "TGP503": _check(ERROR, "The secret's domain differs from the domain.",
                     "Clients send the secret's SNI: the router does not route it to mtg, or mtg fronts a certificate "
                     "for another name.",
                     "Regenerate the secret for the domain, or change the domain to the secret's."),
    "TGP504": _check(ERROR, "The domain (magic SNI) is not routed to mtg.",
                     "Telegram clients land on the website (or are dropped) and never reach mtg.",
                     "Add {match: sni_exact, value: <domain>, backend: <mtg backend>} before any broader route."),
    "TGP505": _check(WARNING, "Another name is routed to mtg.",
                     "Clients only ever send the secret's domain; other names routed to mtg just add a second "
                     "fingerprint.",
                     "Route only the domain to mtg."),
    "TGP506": _check(ERROR, "Duplicate route.",
                     "The later route never matches (HAProxy, sslh) or the config is rejected (nginx map).",
                     "Keep one route per name."),
    "TGP507": _check(ERROR, "Route shadowed by an earlier, broader route.",
                     "HAProxy and sslh take the first match: traffic meant for this route goes to another backend.",
                     "Put exact names before suffix routes (and the catch-all last for sslh)."),
    "TGP508": _check(WARNING, "ALPN route before the magic SNI route.",
                     "Telegram's FakeTLS ClientHello advertises ALPN (h2, http/1.1): it may be caught by the ALPN "
                     "route and never reach mtg.",
                     "Put the SNI route to mtg before ALPN routes."),
    "TGP509": _check(ERROR, "Route to an undefined backend.",
                     "The router refuses the config (HAProxy/nginx) or drops the traffic.",
                     "Define the backend under router.backends or fix the name."),
    "TGP510": _check(ERROR, "Router backend that nobody deploys.",
                     "Connections routed there are refused (or loop back into the router).",
                     "Point the backend at mtg.bind, web.https_bind/http_bind or a declared other_services bind."),
    "TGP512": _check(ERROR, "Route type the router cannot do.",
                     "The router cannot tell those clients apart (nginx stream: SSH; sslh: SNI suffixes): they land "
                     "on another route (model.ROUTER_CAPABILITIES).",
                     "Use haproxy (every route type), list the names as sni_exact routes, or drop the route."),
    # -- web / ACME -----------------------------------------------------------
    "TGP601": _check(ERROR, "ACME HTTP-01 but :80 does not reach the web server.",
                     "Let's Encrypt cannot validate: the certificate is never issued or silently stops renewing.",
                     "Set router.http.acme_passthrough_to to web.http_bind, or let the web server own public :80 "
                     "(router.http: null), or use dns-01."),
    "TGP602": _check(ERROR, "The web certificate does not cover the domain.",
                     "Probes with the domain's SNI get a certificate for another name: the disguise fails.",
                     "Add the domain (or a matching *.parent wildcard) to web.cert_domains."),
    "TGP603": _check(WARNING, "Hosts of one fleet serve the same website.",
                     "Whoever finds one proxy finds the others by content: the same pages, the same favicon, the "
                     "same sitemap.",
                     "Leave site_content_seed unset (each host makes its own), or give each host its own seed; "
                     "a copied seed file: delete /var/lib/tgproxy/site/seed on all but one and re-run."),
    # -- capacity (module_utils/tuning.py derives the limits) -------------------
    "TGP701": _check(ERROR, "Bad capacity declaration.",
                     "The derived limits (maxconn, concurrency, open files, backlogs) would be nonsense, or the "
                     "memory budget cannot hold the connections: the host swaps or the OOM killer ends the proxy.",
                     "Declare capacity.connections, new_per_second, memory_mb and keepalive_seconds within the "
                     "stated ranges, with memory_mb large enough for the connections."),
    "TGP702": _check(ERROR, "mtg concurrency below the declared capacity.",
                     "mtg refuses connections beyond its concurrency: clients over the limit cannot connect although "
                     "the host was sized for them.",
                     "Leave mtg.concurrency unset (derived from capacity.connections) or raise it."),
    "TGP703": _check(ERROR, "Router maxconn below the declared capacity.",
                     "The router stops accepting at maxconn: Telegram clients and website visitors queue and time "
                     "out below the load the host was sized for.",
                     "Leave router.maxconn unset (derived from capacity.connections) or raise it."),
    # -- platform -------------------------------------------------------------
    "TGP801": _check(ERROR, "A platform the collection does not support.",
                     "The roles install Debian packages and systemd units: elsewhere they fail half-way, or the "
                     "distribution's versions lack what the configs use.",
                     "Run the host on Debian 12 or 13 (tested) or Ubuntu 22.04 or 24.04 (expected to work)."),
    "TGP802": _check(WARNING, "A platform no test covers.",
                     "It is expected to work (its package versions are known), but no scenario has run on it.",
                     "Prefer Debian 12 or 13; on this platform, run the doctor after every deploy."),
    # -- DNS (only with a resolver) -------------------------------------------
    "TGP901": _check(WARNING, "The domain's DNS does not point at this host.",
                     "Clients and Let's Encrypt go elsewhere; links using the domain do not reach this proxy.",
                     "Publish A/AAAA records for the domain with public_ipv4/public_ipv6 (or fix those values)."),
    "TGP902": _check(WARNING, "The fronting hostname resolves to this host's entry point.",
                     "Fronting loops back into the router/mtg.",
                     "Front to the web server's internal address, e.g. 127.0.0.1:8443."),
}
# the roles' own input checks (TGP95x), in the same catalogue
CHECKS.update((code, _check(*entry)) for code, entry in findings_mod.ROLE_CHECKS.items())


class Finding(findings_mod.Finding):
    """A validator finding: the one finding type (findings.py), its severity, what breaks and fix from CHECKS."""

    def __init__(self, code, variables, msg, breaks=None, fix=None):
        check = CHECKS[code]
        super(Finding, self).__init__(code, variables, msg, breaks=breaks or check["breaks"], fix=fix or check["fix"],
                                      severity=check["severity"])


def errors(findings):
    return [finding for finding in findings if finding.severity == ERROR]


def warnings(findings):
    return [finding for finding in findings if finding.severity == WARNING]


# --------------------------------------------------------------------------
# Small helpers over addresses
# --------------------------------------------------------------------------
def _canon(host):
    ip = _ip(host)
    return str(ip) if ip is not None else str(host).lower().rstrip(".")


def _hostport(value):
    try:
        host, port = model.split_hostport(value)
    except (ValueError, TypeError):
        return None
    return _canon(host), port


def _scope(host):
    """wildcard | loopback | private | public | name (the model's address classes)."""
    return model.address_scope(host)


def _sockets(host, daemon):
    """What a bind on ``host`` occupies: [(family, address, certain)]."""
    if host == "localhost":
        return [(4, "127.0.0.1", True)]
    ip = _ip(host)
    if ip is None:
        return []
    addr = str(ip)
    if addr == "0.0.0.0":
        return [(4, addr, True)] + ([(6, "::", True)] if daemon == _GO else [])
    if addr == "::":
        if daemon == _GO:
            return [(6, addr, True), (4, "0.0.0.0", True)]
        if daemon == _NGINX:
            return [(6, addr, True)]
        return [(6, addr, True), (4, "0.0.0.0", False)]
    return [(ip.version, addr, True)]


def _overlap(host_a, daemon_a, host_b, daemon_b):
    if _scope(host_a) == "name" or _scope(host_b) == "name":
        return host_a == host_b
    for fam_a, addr_a, dummy in _sockets(host_a, daemon_a):
        for fam_b, addr_b, dummy in _sockets(host_b, daemon_b):
            if fam_a == fam_b and (addr_a == addr_b or addr_a in _WILDCARDS or addr_b in _WILDCARDS):
                return True
    return False


def _connect_host(bind_host, daemon):
    """Where a local client connects to reach a bind (wildcards become loopback)."""
    if bind_host == "0.0.0.0":
        return "127.0.0.1"
    if bind_host == "::":
        return "::1" if daemon == _NGINX else "127.0.0.1"
    return bind_host


_ip = values.ip
_parse_duration = values.parse_duration
duration_seconds = values.duration_seconds
_loose_version = values.loose_version


def _sni_labels_ok(value, min_labels):
    """An SNI as the routers match it: lower-case labels (the validator lower-cases the domain first)."""
    return value == value.lower() and values.hostname_ok(value, min_labels)


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------
class _Normaliser(object):
    def __init__(self):
        self.findings = []

    def add(self, code, variables, msg, breaks=None, fix=None):
        self.findings.append(Finding(code, variables, msg, breaks, fix))

    def bad(self, path, value, expected, secret=False):
        shown = "not valid" if secret else "%s" % _show(value)
        self.add("TGP004", [path], "%s is %s; expected %s." % (path, shown, expected),
                 fix="Set %s to %s." % (path, expected))

    def section(self, raw, path, allowed):
        if raw is None or raw is _MISSING:
            return {}
        if not isinstance(raw, dict):
            self.bad(path, raw, "a mapping")
            return {}
        for key in raw:
            if key not in allowed:
                self.add("TGP005", [_join(path, key)], "%s is not a known key of %s." % (key, path or "the topology"),
                         fix="Use one of: %s." % ", ".join(allowed))
        return raw

    def boolean(self, raw, key, path, default):
        value = raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        self.bad(_join(path, key), value, "true or false")
        return None

    def integer(self, raw, key, path, default, nullable=False):
        value = raw.get(key, _MISSING)
        if value is _MISSING:
            return default
        if value is None:
            return None if nullable else default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.bad(_join(path, key), value, "a positive integer")
            return None
        return value

    def choice(self, raw, key, path, choices, default):
        value = raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if value not in choices:
            self.bad(_join(path, key), value, "one of %s" % ", ".join(choices))
            return None
        return value

    def address(self, raw, key, path, default, nullable=False):
        value = raw.get(key, _MISSING)
        if value is _MISSING:
            return default
        if value is None and nullable:
            return None
        if _hostport(value) is None:
            self.bad(_join(path, key), value, "host:port, e.g. 127.0.0.1:3128 or [::]:443")
            return None
        return value

    def addresses(self, raw, key, path, default, allow_empty=False):
        value = raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            return list(default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or (not value and not allow_empty):
            self.bad(_join(path, key), value, "a host:port or a non-empty list of them")
            return None
        good = []
        for index, item in enumerate(value):
            if _hostport(item) is None:
                self.bad("%s[%d]" % (_join(path, key), index), item, "host:port, e.g. 0.0.0.0:443 or [::]:443")
            else:
                good.append(item)
        return good

    def duration(self, raw, key, path, default):
        value = raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if _parse_duration(value) is None:
            self.bad(_join(path, key), value, "a duration such as 1h, 90m or 3600s")
            return None
        return value

    def ip(self, raw, key, family):
        value = raw.get(key)
        if value in (None, ""):
            return None
        ip = _ip(value)
        if ip is None or ip.version != family:
            self.bad(key, value, "an IPv%d address" % family)
            return None
        return str(ip)

    def strings(self, raw, key, path, default):
        value = raw.get(key, _MISSING)
        if value is _MISSING or value is None:
            return list(default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
            self.bad(_join(path, key), value, "a list of strings")
            return None
        return list(value)


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


class _Facts(object):
    """What the checks need beyond the normalised document."""

    def __init__(self):
        self.kind_ok = False
        self.router_kind_ok = False
        self.web_kind_ok = False
        self.version = None
        self.fronting_key_given = None
        self.targets = {}
        self.domain_written = None
        self.instance_domains_written = []


def _normalise(raw):
    norm = _Normaliser()
    facts = _Facts()
    if not isinstance(raw, dict):
        norm.bad("topology", raw, "a mapping")
        return None, facts, norm.findings
    top = norm.section(raw, "", _TOP_KEYS)

    kind = top.get("kind") or "mtg_direct"
    facts.kind_ok = kind in model.TOPOLOGIES
    if not facts.kind_ok:
        norm.add("TGP001", ["kind"], "Unknown topology kind %s." % _show(kind))
    is_router = kind == "sni_router"
    domain = facts.domain_written = top.get("domain")
    domain = domain.strip().lower().rstrip(".") if isinstance(domain, str) else domain
    doc = {
        "kind": kind,
        "domain": domain,
        "public_ipv4": norm.ip(top, "public_ipv4", 4),
        "public_ipv6": norm.ip(top, "public_ipv6", 6),
    }
    proxy_protocol = norm.boolean(top, "proxy_protocol", "", kind != "sni_router")
    doc["proxy_protocol"] = proxy_protocol
    pp_default = bool(proxy_protocol)

    # -- router kind first: it decides who owns :80 --------------------------------
    router_raw = top.get("router", _MISSING)
    if kind == "mtg_direct" and router_raw not in (_MISSING, None) and router_raw != {}:
        norm.add("TGP007", ["router", "kind"], "A router section is given but kind is mtg_direct (mtg owns :443).",
                 fix="Remove router, or set kind: sni_router.")
    if not is_router:
        router_raw = None
    router = norm.section(router_raw, "router", _ROUTER_KEYS) if is_router else {}
    rkind = router.get("kind") or "haproxy"
    facts.router_kind_ok = rkind in ROUTER_KINDS
    if is_router and not facts.router_kind_ok:
        norm.add("TGP002", ["router.kind"], "Unknown router kind %s." % _show(rkind))
    http_raw = router.get("http", _MISSING)
    if is_router and rkind == "sslh" and http_raw not in (_MISSING, None):
        norm.add("TGP007", ["router.http", "router.kind"],
                 "router.http is given but sslh has no HTTP frontend; the web server must own :80.",
                 fix="Set router.http: null (the web server then binds public :80).")
        http_raw = None
    if rkind == "sslh" and http_raw is _MISSING:
        http_raw = None
    router_owns_80 = is_router and http_raw is not None
    doc["capacity"], doc["tuning"] = _capacity(norm, top.get("capacity"), rkind if is_router else None)
    doc["platform"] = _platform(norm, top.get("platform"))
    site = norm.section(top.get("site"), "site", _SITE_KEYS)
    doc["site_shared_with"] = norm.strings(site, "shared_with", "site", [])

    web, wdaemon = _normalise_web(norm, facts, top, domain, pp_default, router_owns_80)
    doc["web"] = web
    doc["mtg"] = _normalise_mtg(norm, facts, top, doc, rkind if is_router else None, pp_default, wdaemon)
    # the names the web server serves a site of its own for: the domain, then each further instance's (retired
    # ones too: their SNI gets the website)
    web["sites"] = [domain] + [instance["domain"] for instance in doc["mtg"]["instances"]
                               if model.is_hostname(instance["domain"]) and instance["domain"] != domain]
    web_raw = top.get("web") if isinstance(top.get("web"), dict) else {}
    if web_raw.get("cert_domains") is None and web["cert_domains"] is not None:
        # each further instance's domain gets a certificate (and a site) too, retired or not
        web["cert_domains"] = web["cert_domains"] + [
            instance["domain"] for instance in doc["mtg"]["instances"]
            if isinstance(instance["domain"], str) and instance["domain"] not in web["cert_domains"]]
    doc["other_services"] = _normalise_others(norm, top)
    if not is_router:
        doc["router"] = None
        return doc, facts, norm.findings
    doc["router"] = _normalise_router(norm, facts, doc, router, rkind, http_raw, wdaemon)
    if doc["tuning"] and not _backends_on_loopback(doc["router"]):
        # derived before the backends existed: the router->backend hop off loopback needs TIME_WAIT reuse
        capacity = dict(doc["capacity"])
        cpus = capacity.pop("cpus", 1)
        doc["tuning"] = tuning.derive(capacity, cpus=cpus, router_kind=rkind, backend_loopback=False,
                                      prefix="capacity")
    return doc, facts, norm.findings


def _backends_on_loopback(router):
    """Whether the router reaches every backend on loopback (the kernel reuses TIME_WAIT ports there)."""
    for backend in (router.get("backends") or {}).values():
        hostport = _hostport(backend.get("address")) if backend.get("address") else None
        if hostport is None:
            continue
        ip = _ip(hostport[0])
        if not (hostport[0] == "localhost" or (ip is not None and ip.is_loopback)):
            return False
    return True


def _normalise_web(norm, facts, top, domain, pp_default, router_owns_80):
    """The web section: binds (who owns :80 decides http_bind), PROXY, ACME, certificate names."""
    web_raw = norm.section(top.get("web"), "web", _WEB_KEYS)
    wkind = web_raw.get("kind") or "caddy"
    facts.web_kind_ok = wkind in WEB_KINDS
    if not facts.web_kind_ok:
        norm.add("TGP003", ["web.kind"], "Unknown web server kind %s." % _show(wkind))
    wdaemon = _WEB_DAEMON.get(wkind, _GENERIC)
    if router_owns_80:
        http_default = [WEB_INTERNAL_HTTP_BIND]
    elif wkind == "caddy":
        http_default = ["[::]:%d" % model.PUBLIC_HTTP_PORT]
    else:
        http_default = ["0.0.0.0:%d" % model.PUBLIC_HTTP_PORT, "[::]:%d" % model.PUBLIC_HTTP_PORT]
    web = {
        "kind": wkind,
        "https_bind": norm.addresses(web_raw, "https_bind", "web", ["127.0.0.1:%d" % model.WEB_TLS_PORT]),
        "http_bind": norm.addresses(web_raw, "http_bind", "web", http_default, allow_empty=True),
        "proxy_protocol": norm.boolean(web_raw, "proxy_protocol", "web", pp_default),
    }
    allow = norm.strings(web_raw, "proxy_allow", "web", DEFAULT_PROXY_ALLOW)
    if allow is not None:
        for index, cidr in enumerate(allow):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                norm.bad("web.proxy_allow[%d]" % index, cidr, "a CIDR such as 127.0.0.1/32")
                allow = None
                break
    web["proxy_allow"] = allow
    acme = web_raw.get("acme", _MISSING)
    if acme is _MISSING or acme is None:
        acme = {}
    if not isinstance(acme, dict):
        norm.bad("web.acme", acme, "a mapping")
        acme = {}
    acme = dict(acme)
    acme["challenge"] = norm.choice(acme, "challenge", "web.acme", ACME_CHALLENGES, "http-01")
    web["acme"] = acme
    web["cert_domains"] = norm.strings(web_raw, "cert_domains", "web", [domain] if isinstance(domain, str) else [])
    return web, wdaemon


def _normalise_mtg(norm, facts, top, doc, rkind, pp_default, wdaemon):
    """The mtg section: version, secret, bind, PROXY listener, fronting target (the web server), limits, slots."""
    is_router = rkind is not None
    web = doc["web"]
    mtg_raw = norm.section(top.get("mtg"), "mtg", _MTG_KEYS)
    version = mtg_raw.get("version") or model.MTG_DEFAULT_VERSION
    try:
        facts.version = model.parse_version(version)
        if facts.version < (2, 0, 0):
            facts.version = None
            norm.add("TGP006", ["mtg.version"], "mtg %s is v1; this collection configures mtg v2." % version)
    except ValueError:
        norm.add("TGP006", ["mtg.version"], "%s is not a release version." % _show(version))
    secret = mtg_raw.get("secret")
    if secret is not None and not isinstance(secret, str):
        norm.bad("mtg.secret", secret, "a hex or base64url string", secret=True)
        secret = None
    mtg = {
        "version": "%d.%d.%d" % facts.version if facts.version else version,
        "secret": secret or None,
        "bind": norm.address(mtg_raw, "bind", "mtg", "127.0.0.1:%d" % model.MTG_INTERNAL_PORT if is_router
                             else "[::]:%d" % model.PUBLIC_TLS_PORT),
        "proxy_protocol_listener": norm.boolean(mtg_raw, "proxy_protocol_listener", "mtg",
                                                pp_default if is_router else False),
    }
    fronting_raw = norm.section(mtg_raw.get("fronting"), "mtg.fronting", _FRONTING_KEYS)
    first_https = _hostport(web["https_bind"][0]) if web["https_bind"] else None
    fhost_default = _connect_host(first_https[0], wdaemon) if first_https else "127.0.0.1"
    fport_default = first_https[1] if first_https else model.WEB_TLS_PORT
    fhost = fronting_raw.get("host", _MISSING)
    if fhost is _MISSING or fhost is None:
        fhost = fhost_default
    elif isinstance(fhost, str) and fhost.strip():
        fhost = fhost.strip().lower().rstrip(".")
    if not isinstance(fhost, str) or not (_ip(fhost) or fhost == "localhost" or _sni_labels_ok(fhost, 1)):
        norm.bad("mtg.fronting.host", fhost, "an IP address or a hostname")
        fhost = None
    fport = norm.integer(fronting_raw, "port", "mtg.fronting", fport_default)
    if fport is not None and fport > 65535:
        norm.bad("mtg.fronting.port", fport, "a port number (1-65535)")
        fport = None
    web_pp = web["proxy_protocol"] if web["proxy_protocol"] is not None else pp_default
    facts.fronting_key_given = norm.choice(fronting_raw, "key", "mtg.fronting", FRONTING_KEYS, None)
    mtg["fronting"] = {
        "host": _canon(fhost) if fhost is not None and _ip(fhost) else fhost,
        "port": fport,
        "proxy_protocol": norm.boolean(fronting_raw, "proxy_protocol", "mtg.fronting", web_pp),
        "key": facts.fronting_key_given or (model.mtg_fronting_key(mtg["version"]) if facts.version else None),
    }
    mtg["concurrency"] = norm.integer(mtg_raw, "concurrency", "mtg", doc["tuning"]["mtg_concurrency"]
                                      if doc["tuning"] else MTG_DEFAULT_CONCURRENCY)
    mtg["stats_enabled"] = norm.boolean(mtg_raw, "stats_enabled", "mtg", True)
    mtg["stats_bind"] = norm.address(mtg_raw, "stats_bind", "mtg", "127.0.0.1:%d" % model.MTG_STATS_PORT)
    mtg["idle_timeout"] = norm.duration(mtg_raw, "idle_timeout", "mtg", None)
    binds = [mtg["bind"], mtg["stats_bind"]] + list(web["https_bind"] or []) + list(web["http_bind"] or [])
    for other in top.get("other_services") or [] if isinstance(top.get("other_services"), list) else []:
        bind = other.get("bind") if isinstance(other, dict) else None
        binds.extend(bind if isinstance(bind, list) else [bind])
    _normalise_mtg_slots(norm, mtg, mtg_raw, rkind, binds)
    binds += [bind for dummy, dummy, bind in mtg_listeners(mtg)]
    mtg["instances"] = _normalise_mtg_instances(norm, facts, top, mtg, mtg_raw, rkind, binds)
    return mtg


def _ports_in_use(binds):
    for bind in binds:
        parsed = _hostport(bind) if isinstance(bind, str) else None
        if parsed:
            yield parsed[1]


def _free_port(port, used):
    while port in used:
        port += 1
    return port


def _normalise_mtg_slots(norm, mtg, mtg_raw, rkind, doc_binds):
    """Blue/green: two mtg instances (slots) on two loopback ports behind the router, one of them live.

    ``slots`` maps blue (mtg.bind, mtg.stats_bind) and green (mtg.alternate_bind, mtg.alternate_stats_bind) to
    their listeners; ``slot`` names the live one, whose listeners become ``bind`` and ``stats_bind`` (what the
    router, the doctor and the probes reach). A change to mtg starts the other slot, checks it, switches the
    router to it with a hitless reload and drains the old one (playbooks/tasks/mtg_switch.yml).
    ``blue_green`` is on by default where the router reloads hitlessly (model.ROUTER_CAPABILITIES).
    """
    hitless = bool(rkind) and model.ROUTER_CAPABILITIES.get(rkind, {}).get("reload") == "hitless"
    given = mtg_raw.get("blue_green")
    blue_green = norm.boolean(mtg_raw, "blue_green", "mtg", hitless)
    if blue_green and given not in (None, _MISSING) and not hitless:
        norm.add("TGP330", ["mtg.blue_green"] + (["router.kind"] if rkind else ["kind"]),
                 "mtg.blue_green is on, but %s." % (
                     "sslh has no hitless reload: the switch to the new mtg would restart it and close every "
                     "session it carries" if rkind == "sslh" else
                     "mtg owns :443 itself (mtg_direct): no router can switch new connections to a second mtg"))
        blue_green = False
    slot = norm.choice(mtg_raw, "slot", "mtg", MTG_SLOTS, MTG_SLOTS[0])
    mtg["blue_green"] = bool(blue_green)
    if not (blue_green or slot == "green") or not is_router_kind(rkind):
        for key in ("alternate_bind", "alternate_stats_bind"):
            if mtg_raw.get(key) is not None:
                norm.add("TGP330", ["mtg.%s" % key, "mtg.blue_green"],
                         "mtg.%s is set, but no second mtg runs on this host (blue/green is off)." % key,
                         fix="Remove mtg.%s, or turn blue/green on (behind HAProxy or nginx stream)." % key)
        mtg["slot"], mtg["slots"] = "blue", None
        return
    # beside the first slot on loopback (a first slot elsewhere is TGP301/302's business, not this one's)
    host = _hostport(mtg["bind"])[0] if mtg["bind"] and _hostport(mtg["bind"]) else "127.0.0.1"
    host = host if _scope(host) == "loopback" else "127.0.0.1"
    shown = "[%s]" % host if ":" in host else host
    # defaults: the model's ports, or the next ones no other listener of the host takes
    used = set(_ports_in_use(doc_binds))
    port = _free_port(model.MTG_ALTERNATE_PORT, used)
    alternate = norm.address(mtg_raw, "alternate_bind", "mtg", "%s:%d" % (shown, port))
    stats_port = _free_port(max(model.MTG_ALTERNATE_STATS_PORT, port + 1), used | {port})
    alternate_stats = norm.address(mtg_raw, "alternate_stats_bind", "mtg", "127.0.0.1:%d" % stats_port)
    mtg["slots"] = {"blue": {"bind": mtg["bind"], "stats_bind": mtg["stats_bind"]},
                    "green": {"bind": alternate, "stats_bind": alternate_stats}}
    mtg["slot"] = slot or "blue"
    live = mtg["slots"][mtg["slot"]]
    mtg["bind"], mtg["stats_bind"] = live["bind"], live["stats_bind"]


def _normalise_mtg_instances(norm, facts, top, mtg, mtg_raw, rkind, doc_binds):
    """Further mtg instances beside the first, each with its own secret and its own domain (SNI), behind the router.

    mtg keeps one secret per process; a router routes each instance's domain to its instance. Each one is
    {name, unit, domain, secret, bind, stats_bind, retire_at, retired, retire_timer, slots, slot, units, live_unit}:
    ``bind`` and ``stats_bind`` default to the next loopback ports no other listener takes (from
    model.MTG_INSTANCE_PORT); ``retire_at`` (a UTC date or time) ends its service: from then (``now``, the
    controller's clock, at or after it) ``retired`` is true, the instance is stopped and its domain goes to the
    website, as any name that is not routed to mtg. Before then, ``retire_timer`` says whether the host stops it at
    retire_at itself (the router then sends its domain to the website: RETIRE_ON_HOST_ROUTERS) or a run after it
    does (TGP344). Every other mtg setting (version, concurrency, PROXY listener, fronting) is the first instance's.

    With blue/green (the first instance's ``blue_green``) each instance has two slots too, as the first one:
    ``slots`` maps blue (bind, stats_bind) and green (alternate_bind, alternate_stats_bind: by default the next
    free loopback ports after every instance's first ones) to their listeners, ``units`` each slot to its unit
    (``unit``, the instance's name on the host, and ``unit``-green), ``slot`` names the live one (mtg.instance_slots,
    what the host recorded) and ``bind``, ``stats_bind`` and ``live_unit`` are the live slot's.
    """
    raw = mtg_raw.get("instances")
    if raw in (None, _MISSING, []):
        return []
    if not isinstance(raw, (list, tuple)):
        norm.bad("mtg.instances", raw, "a list of {name, domain, secret, bind, stats_bind, retire_at}")
        return []
    if not is_router_kind(rkind):
        norm.add("TGP340", ["mtg.instances", "kind"],
                 "mtg.instances lists %d more mtg instance(s), but mtg owns :443 itself (mtg_direct): nothing "
                 "can route a second domain to a second mtg." % len(raw))
        return []
    now = _epoch(norm, top, "now", "")
    used = set(_ports_in_use(doc_binds))
    instances, items = [], []
    for index, item in enumerate(raw):
        path = "mtg.instances[%d]" % index
        item = norm.section(item, path, _INSTANCE_KEYS)
        items.append(item)
        name = item.get("name")
        if not (isinstance(name, str) and values.is_instance_name(name)) or name in model.MTG_RESERVED_NAMES:
            norm.bad(_join(path, "name"), name, "a name of lower-case letters and digits, starting with a letter, "
                     "at most 16 (not %s)" % ", ".join(model.MTG_RESERVED_NAMES))
            name = None
        domain = item.get("domain")
        facts.instance_domains_written.append(domain)
        domain = domain.strip().lower().rstrip(".") if isinstance(domain, str) else domain
        secret = item.get("secret")
        if secret is not None and not isinstance(secret, str):
            norm.bad(_join(path, "secret"), secret, "a hex or base64url string", secret=True)
            secret = None
        port = _free_port(model.MTG_INSTANCE_PORT, used)
        bind = norm.address(item, "bind", path, "127.0.0.1:%d" % port)
        used |= set(_ports_in_use([bind])) | {port}
        stats_port = _free_port(port + 1, used)
        stats_bind = norm.address(item, "stats_bind", path, "127.0.0.1:%d" % stats_port)
        used |= set(_ports_in_use([stats_bind])) | {stats_port}
        retire_at = _epoch(norm, item, "retire_at", path)
        retired = bool(retire_at is not None and now is not None and now >= retire_at)
        unit = model.mtg_instance_unit(name) if name else None
        instances.append({"name": name, "unit": unit, "live_unit": unit,
                          "domain": domain, "secret": secret or None, "bind": bind,
                          "stats_bind": stats_bind, "retire_at": retire_at, "retired": retired,
                          # the host stops it at retire_at itself (a systemd timer) where the router then sends its
                          # domain to the website: HAProxy (health checks) and nginx stream (a backup server)
                          "retire_timer": bool(retire_at is not None and not retired
                                               and rkind in RETIRE_ON_HOST_ROUTERS),
                          "slots": None, "slot": "blue", "units": {"blue": unit} if unit else None})
    _normalise_instance_slots(norm, mtg, mtg_raw, instances, items, used)
    return instances


def _normalise_instance_slots(norm, mtg, mtg_raw, instances, items, used):
    """Each further instance's second slot where the first instance has blue/green (its docstring above)."""
    recorded = mtg_raw.get("instance_slots")
    if recorded in (None, _MISSING):
        recorded = {}
    if not isinstance(recorded, dict) or not all(isinstance(k, str) and v in MTG_SLOTS for k, v in recorded.items()):
        norm.bad("mtg.instance_slots", recorded, "a mapping of instance name -> blue or green (what the host recorded)")
        recorded = {}
    for index, (instance, item) in enumerate(zip(instances, items)):
        path = "mtg.instances[%d]" % index
        if not mtg["blue_green"]:
            for key in ("alternate_bind", "alternate_stats_bind"):
                if item.get(key) is not None:
                    norm.add("TGP330", [_join(path, key), "mtg.blue_green"],
                             "%s.%s is set, but no second mtg runs on this host (blue/green is off)." % (path, key),
                             fix="Remove %s.%s, or turn blue/green on (behind HAProxy or nginx stream)." % (path, key))
            continue
        host = _hostport(instance["bind"])[0] if instance["bind"] and _hostport(instance["bind"]) else "127.0.0.1"
        host = host if _scope(host) == "loopback" else "127.0.0.1"
        shown = "[%s]" % host if ":" in host else host
        port = _free_port(model.MTG_INSTANCE_PORT, used)
        alternate = norm.address(item, "alternate_bind", path, "%s:%d" % (shown, port))
        used |= set(_ports_in_use([alternate])) | {port}
        stats_port = _free_port(port + 1, used)
        alternate_stats = norm.address(item, "alternate_stats_bind", path, "127.0.0.1:%d" % stats_port)
        used |= set(_ports_in_use([alternate_stats])) | {stats_port}
        instance["slots"] = {"blue": {"bind": instance["bind"], "stats_bind": instance["stats_bind"]},
                             "green": {"bind": alternate, "stats_bind": alternate_stats}}
        unit = instance["unit"]
        instance["units"] = {"blue": unit, "green": unit + "-green"} if unit else None
        instance["slot"] = recorded.get(instance["name"], "blue") if instance["name"] else "blue"
        live = instance["slots"][instance["slot"]]
        instance["bind"], instance["stats_bind"] = live["bind"], live["stats_bind"]
        instance["live_unit"] = instance["units"][instance["slot"]] if unit else None


def _epoch(norm, raw, key, path):
    """A moment as seconds since the epoch (UTC): an ISO 8601 date, date and time, or a number of seconds."""
    value = raw.get(key)
    if value is None:
        return None
    seconds = values.epoch_seconds(value)
    if seconds is None:
        norm.bad(_join(path, key), value, "a UTC date or time such as 2027-01-31 or 2027-01-31T18:00:00Z")
    return seconds


def is_router_kind(rkind):
    return rkind in ROUTER_KINDS


# the two mtg instances of blue/green, and the doc path of each one's listeners
MTG_SLOTS = ("blue", "green")
_SLOT_PATHS = {"blue": ("mtg.bind", "mtg.stats_bind"), "green": ("mtg.alternate_bind", "mtg.alternate_stats_bind")}


def mtg_listeners(mtg):
    """[(doc path, role, bind)] of every mtg listener on the host: each slot's (or the one first instance's), then
    those of the further instances (mtg.instances[i], retired ones too: their ports stay theirs)."""
    out = []
    if mtg.get("slots"):
        for slot in MTG_SLOTS:
            path, stats_path = _SLOT_PATHS[slot]
            out.append((path, "bind", mtg["slots"][slot]["bind"]))
            if mtg.get("stats_enabled"):
                out.append((stats_path, "stats", mtg["slots"][slot]["stats_bind"]))
    else:
        out.append(("mtg.bind", "bind", mtg.get("bind")))
        if mtg.get("stats_enabled"):
            out.append(("mtg.stats_bind", "stats", mtg.get("stats_bind")))
    for index, instance in enumerate(mtg.get("instances") or []):
        slots = instance.get("slots") or {"blue": instance}
        for slot in MTG_SLOTS:
            if slot not in slots:
                continue
            path, stats_path = ("mtg.instances[%d].%s" % (index, key.split(".", 1)[1]) for key in _SLOT_PATHS[slot])
            out.append((path, "bind", slots[slot]["bind"]))
            if mtg.get("stats_enabled"):
                out.append((stats_path, "stats", slots[slot]["stats_bind"]))
    return [item for item in out if item[2]]


_INSTANCE_PATH = re.compile(r"^mtg\.instances\[(\d+)\]")


def _instance_index(path):
    match = _INSTANCE_PATH.match(path)
    return int(match.group(1)) if match else None


def is_mtg_target(target):
    """Whether a router backend's target (validator facts) is an mtg: the first instance or a further one."""
    return target == "mtg" or (isinstance(target, str) and target.startswith("mtg:"))


def _normalise_others(norm, top):
    """Other listeners on the host that routes may point at (e.g. sshd)."""
    others_raw = top.get("other_services")
    others = []
    if others_raw is not None and not isinstance(others_raw, (list, tuple)):
        norm.bad("other_services", others_raw, "a list of {name, bind}")
        others_raw = []
    for index, item in enumerate(others_raw or []):
        path = "other_services[%d]" % index
        item = norm.section(item, path, _OTHER_KEYS)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            norm.bad(_join(path, "name"), name, "a service name")
            name = None
        if item.get("bind") is None:
            norm.bad(_join(path, "bind"), None, "host:port or a list of them (required)")
            binds = None
        else:
            binds = norm.addresses(item, "bind", path, [])
        others.append({"name": name, "bind": binds,
                       "proxy_protocol": norm.boolean(item, "proxy_protocol", path, False)})
    return others


def _normalise_router(norm, facts, doc, router, rkind, http_raw, wdaemon):
    """The router section (sni_router only): listeners, limits, timeouts, :80, backends, routes."""
    web = doc["web"]
    rversion = router.get("version")
    if rversion is not None and _loose_version(rversion) is None:
        norm.bad("router.version", rversion, "a version such as 2.8.16")
        rversion = None
    doc_router = {
        "kind": rkind,
        "version": None if rversion is None else str(rversion),
        "listen": norm.addresses(router, "listen", "router",
                                 ["0.0.0.0:%d" % model.PUBLIC_TLS_PORT, "[::]:%d" % model.PUBLIC_TLS_PORT]),
        "terminates_tls": norm.boolean(router, "terminates_tls", "router", False),
        "transparent": norm.boolean(router, "transparent", "router", False),
        "maxconn": norm.integer(router, "maxconn", "router", None if rkind == "sslh" else (
            doc["tuning"]["router_maxconn"] if doc["tuning"] else ROUTER_DEFAULT_MAXCONN), nullable=True),
        "flavour": _flavour(norm, router, rkind),
    }
    timeouts_raw = norm.section(router.get("timeouts"), "router.timeouts", tuple(k for k, v in DEFAULT_TIMEOUTS))
    doc_router["timeouts"] = dict((key, norm.duration(timeouts_raw, key, "router.timeouts", default))
                                  for key, default in DEFAULT_TIMEOUTS)
    if http_raw is None:
        doc_router["http"] = None
    else:
        http = norm.section(http_raw, "router.http", _HTTP_KEYS)
        web_http = [_hostport(addr) for addr in (web["http_bind"] or [])]
        acme_default = None
        if web_http:
            acme_default = model.join_hostport(_connect_host(web_http[0][0], wdaemon), web_http[0][1])
        doc_router["http"] = {
            "listen": norm.addresses(http, "listen", "router.http",
                                     ["0.0.0.0:%d" % model.PUBLIC_HTTP_PORT, "[::]:%d" % model.PUBLIC_HTTP_PORT]),
            "acme_passthrough_to": norm.address(http, "acme_passthrough_to", "router.http", acme_default,
                                                nullable=True),
            "redirect_https": norm.boolean(http, "redirect_https", "router.http", True),
        }
    doc["router"] = doc_router
    doc_router["backends"] = _router_backends(norm, facts, doc, router, rkind, wdaemon)
    doc_router["routes"] = _router_routes(norm, router, doc["domain"], doc["mtg"]["instances"])
    return doc_router


def _router_backends(norm, facts, doc, router, rkind, wdaemon):
    """Backends: addresses first, then targets, then send_proxy defaults that follow the receiver."""
    mtg = doc["mtg"]
    first_https = _hostport(doc["web"]["https_bind"][0]) if doc["web"]["https_bind"] else None
    backends_raw = router.get("backends", _MISSING)
    if backends_raw is _MISSING or backends_raw is None:
        backends_raw = {}
        mtg_bind = _hostport(mtg["bind"]) if mtg["bind"] else None
        if mtg_bind:
            backends_raw["mtg"] = {"address": model.join_hostport(_connect_host(mtg_bind[0], _GO), mtg_bind[1])}
        if first_https:
            backends_raw["web"] = {"address": model.join_hostport(_connect_host(first_https[0], wdaemon),
                                                                  first_https[1])}
    elif not isinstance(backends_raw, dict):
        norm.bad("router.backends", backends_raw, "a mapping of name -> {address, send_proxy}")
        backends_raw = {}
    else:
        backends_raw = dict(backends_raw)
    # each further instance serving: its backend, unless the inventory names one mtg_<name> itself
    for instance in mtg["instances"]:
        bind = _hostport(instance["bind"]) if instance["bind"] else None
        name = model.mtg_instance_backend(instance["name"]) if instance["name"] else None
        if bind and name and not instance["retired"] and name not in backends_raw:
            backends_raw[name] = {"address": model.join_hostport(_connect_host(bind[0], _GO), bind[1])}
    backends = {}
    for name, item in backends_raw.items():
        path = "router.backends.%s" % name
        if not isinstance(name, str) or not values.is_backend_name(name):
            norm.bad(path, name, "a backend name of letters, digits, _ and - (starting with a letter)")
        if not isinstance(item, dict):
            norm.bad(path, item, "a mapping {address, send_proxy}")
            item = {}
        else:
            norm.section(item, path, _BACKEND_KEYS)
            if item.get("address") is None:
                norm.bad(_join(path, "address"), None, "host:port (required)")
        address = norm.address(item, "address", path, None) if item.get("address") is not None else None
        facts.targets[name] = _target(doc, address) if address else None
        live = _live_bind(mtg, facts.targets[name])
        if live:
            # blue/green: the backend that reaches either slot of an mtg goes to its live one
            address = model.join_hostport(_connect_host(live[0], _GO), live[1])
        backends[name] = {"address": address}
    for name, item in backends_raw.items():
        item = item if isinstance(item, dict) else {}
        target = facts.targets.get(name)
        expects = _receiver_expects(doc, target)
        if expects is None:
            expects = False
        default = ("v1" if rkind == "nginx_stream" else "v2") if expects else "none"
        backends[name]["send_proxy"] = norm.choice(item, "send_proxy", "router.backends.%s" % name, SEND_PROXY,
                                                   default)
    return backends


def _live_bind(mtg, target):
    """(host, port) of the live slot of the mtg a backend reaches (the first instance or mtg:<name>) where it has
    two (blue/green), else None."""
    if target == "mtg":
        return _hostport(mtg["bind"]) if mtg.get("slots") and mtg["bind"] else None
    for instance in mtg.get("instances") or []:
        if is_mtg_target(target) and target == "mtg:%s" % instance["name"] and instance.get("slots"):
            return _hostport(instance["bind"]) if instance["bind"] else None
    return None


def _router_routes(norm, router, domain, instances):
    """Routes: the magic SNI to mtg and everything else to the web server, unless given; then, first, each
    further instance's domain to that instance until it retires, unless the routes given name the domain or the
    instance's backend themselves (the inventory's own routes for it, TGP504/TGP342 check them)."""
    routes_raw = router.get("routes", _MISSING)
    if routes_raw is _MISSING or routes_raw is None:
        routes_raw = [{"match": "sni_exact", "value": domain, "backend": "mtg"},
                      {"match": "default", "backend": "web"}]
    if not isinstance(routes_raw, (list, tuple)):
        norm.bad("router.routes", routes_raw, "a list of {match, value, backend}")
        routes_raw = []
    named = set()
    for item in routes_raw:
        if isinstance(item, dict):
            named.add(item.get("backend"))
            if item.get("match") == "sni_exact" and isinstance(item.get("value"), str):
                named.add(item["value"].strip().lower())
    added = []
    for instance in instances:
        backend = model.mtg_instance_backend(instance["name"]) if instance["name"] else None
        # a name given twice or not a name at all is TGP341/TGP501's business, not a route's
        if backend and not instance["retired"] and model.is_hostname(instance["domain"]) \
                and not {instance["domain"], backend} & named:
            named |= {instance["domain"], backend}
            added.append({"match": "sni_exact", "value": instance["domain"], "backend": backend})
    routes_raw = added + list(routes_raw)
    routes = []
    for index, item in enumerate(routes_raw):
        path = "router.routes[%d]" % index
        item = norm.section(item, path, _ROUTE_KEYS)
        match = norm.choice(item, "match", path, ROUTE_MATCHES, None)
        if "match" not in item:
            norm.bad(_join(path, "match"), None, "one of %s" % ", ".join(ROUTE_MATCHES))
        value = item.get("value")
        if match in ("sni_exact", "sni_suffix", "alpn"):
            value = value.strip().lower() if isinstance(value, str) else value
            if match == "sni_suffix" and isinstance(value, str):
                value = value[2:] if value.startswith("*.") else value.lstrip(".")
            ok = isinstance(value, str) and (
                model.is_hostname(value) if match == "sni_exact" else
                _sni_labels_ok(value, 1) if match == "sni_suffix" else values.is_alpn(value))
            if not ok:
                norm.bad(_join(path, "value"), item.get("value"),
                         "an SNI name" if match != "alpn" else "an ALPN protocol id such as h2")
                match = None
        else:
            value = None
        backend = item.get("backend")
        if not isinstance(backend, str) or not backend:
            norm.bad(_join(path, "backend"), backend, "the name of a router backend")
            backend = None
        routes.append({"match": match, "value": value, "backend": backend})
    return routes


def _capacity(norm, raw, router_kind):
    """(normalised capacity, derived tuning) or (None, None) when none is declared."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        norm.add("TGP701", ["capacity"], "capacity is %s; expected a mapping." % _show(raw))
        return None, None
    raw = dict((key, value) for key, value in raw.items() if value is not None)
    cpus = raw.pop("cpus", 1)
    try:
        derived = tuning.derive(raw, cpus=cpus, router_kind=router_kind, prefix="capacity")
    except tuning.CapacityError as exc:
        for variable, msg in exc.problems:
            norm.add("TGP701", [variable], "%s %s." % (variable, msg))
        return None, None
    except (TypeError, ValueError):
        norm.bad("capacity.cpus", cpus, "a number of CPUs")
        return None, None
    return dict(derived["capacity"], cpus=max(1, int(cpus or 1))), derived


def _platform(norm, raw):
    platform = norm.section(raw, "platform", _PLATFORM_KEYS)
    values = {}
    for key in _PLATFORM_KEYS:
        value = platform.get(key)
        if value not in (None, "") and not (isinstance(value, str) and re.match(r"^[A-Za-z0-9._-]{1,40}\Z", value)):
            norm.bad("platform." + key, value, "a distribution name or version as Ansible's facts give it")
            value = None
        values[key] = value or None
    return values if values["distribution"] else None


def _check_platform(doc, facts, add):
    given = doc["platform"]
    if not given:
        return
    name = "%s %s" % (given["distribution"], given["version"] or "")
    platform = platforms.find(given["distribution"], given["version"])
    if platform is None:
        add("TGP801", ["platform.distribution", "platform.version"],
            "%s is not a platform this collection supports (%s)." % (name.strip(), platforms.supported_names()))
    elif not platform.tested:
        add("TGP802", ["platform.distribution", "platform.version"],
            "%s is expected to work but no test covers it." % name.strip())


def _check_capacity(doc, facts, add):
    derived = doc["tuning"]
    if not derived:
        return
    connections = derived["capacity"]["connections"]
    concurrency = doc["mtg"]["concurrency"]
    if concurrency is not None and concurrency < connections:
        add("TGP702", ["mtg.concurrency", "capacity.connections"],
            "mtg.concurrency is %d but capacity.connections is %d." % (concurrency, connections))
    router = doc["router"]
    if router and router["maxconn"] is not None and router["maxconn"] < connections:
        add("TGP703", ["router.maxconn", "capacity.connections"],
            "router.maxconn is %d but capacity.connections is %d (derived: %d)."
            % (router["maxconn"], connections, derived["router_maxconn"]))


def _drop_none(value):
    if isinstance(value, dict):
        return dict((k, _drop_none(v)) for k, v in value.items() if v is not None)
    return value


def _without_unset(topology):
    """In the mtg section a None value means "unset": it takes its default.

    (Elsewhere None can mean something, e.g. router.http: null = the web
    server owns :80.)  Playbooks build the document from optional variables.
    """
    if isinstance(topology, dict) and isinstance(topology.get("mtg"), dict):
        topology = dict(topology, mtg=_drop_none(topology["mtg"]))
    return topology


def normalise(topology):
    """The topology with every default filled in (None for a value that failed its check)."""
    return _normalise(_without_unset(topology))[0]


# --------------------------------------------------------------------------
# Model queries used by the checks
# --------------------------------------------------------------------------
def _dest_addrs(doc, host):
    """[(family, address, local)] a connection to ``host`` may go to; [] if unknown."""
    if host is None:
        return []
    host = _canon(host)
    if host == "localhost":
        return [(4, "127.0.0.1", True), (6, "::1", True)]
    domain = doc.get("domain")
    if isinstance(domain, str) and host == domain:
        addrs = [(4, doc["public_ipv4"], True)] if doc.get("public_ipv4") else []
        addrs += [(6, doc["public_ipv6"], True)] if doc.get("public_ipv6") else []
        return addrs or [(4, "<public>", True), (6, "<public>", True)]
    ip = _ip(host)
    if ip is None:
        return []
    addr = str(ip)
    if addr == "0.0.0.0":
        return [(4, "127.0.0.1", True)]
    if addr == "::":
        return [(6, "::1", True)]
    local = ip.is_loopback or addr in (doc.get("public_ipv4"), doc.get("public_ipv6"))
    return [(ip.version, addr, local)]


def _reaches(doc, dest_host, dest_port, bind, daemon):
    parsed = _hostport(bind) if bind else None
    if parsed is None or dest_host is None or parsed[1] != dest_port:
        return False
    bind_host = parsed[0]
    if _scope(bind_host) == "name" or (_scope(_canon(dest_host)) == "name" and _canon(dest_host) != doc.get("domain")):
        return _canon(dest_host) == bind_host
    for family, addr, local in _dest_addrs(doc, dest_host):
        for bfamily, baddr, dummy in _sockets(bind_host, daemon):
            if family == bfamily and (addr == baddr or (baddr in _WILDCARDS and local)):
                return True
    return False


def _services(doc):
    """[(target, role, var, bind, daemon)] of everything that listens on this host."""
    out = []
    router = doc.get("router")
    if router:
        rdaemon = _ROUTER_DAEMON.get(router["kind"], _GENERIC)
        for bind in router.get("listen") or []:
            out.append(("router", "listen", "router.listen", bind, rdaemon))
        if router.get("http"):
            for bind in router["http"].get("listen") or []:
                out.append(("router", "http", "router.http.listen", bind, rdaemon))
    for path, role, bind in mtg_listeners(doc["mtg"]):
        # each slot and each instance is a service of its own: no two may share a port
        index = _instance_index(path)
        out.append((("mtg_instance", index, path) if index is not None else ("mtg", path), role, path, bind, _GO))
    web = doc["web"]
    wdaemon = _WEB_DAEMON.get(web["kind"], _GENERIC)
    for bind in web.get("https_bind") or []:
        out.append(("web", "https", "web.https_bind", bind, wdaemon))
    for bind in web.get("http_bind") or []:
        out.append(("web", "http", "web.http_bind", bind, wdaemon))
    for index, other in enumerate(doc.get("other_services") or []):
        for bind in other.get("bind") or []:
            out.append((("other", index), "bind", "other_services[%d].bind" % index, bind, _GENERIC))
    return out


def _target(doc, address):
    """Which deployed service a connection to ``address`` reaches: mtg, web, web_http, ('other', i), router, None."""
    parsed = _split_raw(address)
    if parsed is None:
        return None
    host, port = parsed
    for target, role, dummy, bind, daemon in _services(doc):
        if role == "stats":
            continue
        if _reaches(doc, host, port, bind, daemon):
            if target == "web":
                return "web_http" if role == "http" else "web"
            # either slot of blue/green is mtg; a further instance is mtg:<name>
            if isinstance(target, tuple) and target[0] == "mtg_instance":
                return "mtg:%s" % doc["mtg"]["instances"][target[1]]["name"]
            return "mtg" if isinstance(target, tuple) and target[0] == "mtg" else target
    return None


def _split_raw(address):
    try:
        return model.split_hostport(address)
    except (ValueError, TypeError):
        return None


def _receiver_expects(doc, target):
    """Whether the service behind ``target`` expects a PROXY header (None: unknown)."""
    if is_mtg_target(target):
        # every instance has the first one's PROXY listener
        return doc["mtg"]["proxy_protocol_listener"]
    if target == "web":
        return doc["web"]["proxy_protocol"]
    if target == "web_http":
        return False
    if isinstance(target, tuple):
        return doc["other_services"][target[1]]["proxy_protocol"]
    return None


def _target_label(doc, target):
    if is_mtg_target(target) and target != "mtg":
        return "mtg instance %s" % target[4:]
    if isinstance(target, tuple):
        name = doc["other_services"][target[1]]["name"] or "#%d" % target[1]
        return "other service %s" % name
    return {"mtg": "mtg", "web": "the web server's TLS listener", "web_http": "the web server's HTTP listener",
            "router": "the router itself"}.get(target, "nothing")


def _route_covers(route, name):
    if route["match"] == "sni_exact":
        return name == route["value"]
    if route["match"] == "sni_suffix":
        return name == route["value"] or name.endswith("." + route["value"])
    return route["match"] == "default"


def _route_for(router, name):
    """Index of the route the router picks for a TLS ClientHello with SNI ``name``."""
    routes = router["routes"]
    kind = router["kind"]
    if kind == "nginx_stream":
        # map with hostnames: exact name, then the longest suffix, then default
        exact = [i for i, r in enumerate(routes) if r["match"] == "sni_exact" and r["value"] == name]
        if exact:
            return exact[0]
        suffixes = [(len(r["value"]), -i, i) for i, r in enumerate(routes)
                    if r["match"] == "sni_suffix" and _route_covers(r, name)]
        if suffixes:
            return max(suffixes)[2]
    else:
        for index, route in enumerate(routes):
            if route["match"] in ("sni_exact", "sni_suffix") and _route_covers(route, name):
                return index
            if kind == "sslh" and route["match"] == "default":
                return index
    defaults = [i for i, r in enumerate(routes) if r["match"] == "default"]
    return defaults[0] if defaults else None


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
def _check_domain_and_secret(doc, facts, add):
    domain = doc["domain"]
    domain_ok = model.is_hostname(domain)
    if not domain_ok:
        add("TGP501", ["domain"], "domain %s is not a valid hostname." % _show(domain))
    elif facts.domain_written != domain:
        # the roles write the domain as given (certificate, SNI routes, the secret): it must already be canonical
        domain_ok = False
        add("TGP501", ["domain"], "domain %s is written %s; the roles use it as written. Write it in lower case, "
            "without white space or a trailing dot." % (domain, _show(facts.domain_written)))
    _check_secret(doc["mtg"]["secret"], "mtg.secret", domain, "domain", domain_ok, add)


def _check_secret(secret, path, domain, domain_path, domain_ok, add):
    """A given secret is well formed and encodes its instance's domain (the first instance's or a further one's)."""
    if not secret:
        return
    try:
        parsed = model.Secret.parse(secret)
    except ValueError as exc:
        add("TGP008", [path], "%s is malformed: %s." % (path, exc))
        return
    if not model.is_hostname(parsed.domain):
        add("TGP502", [path], "The secret encodes %s, which is not a valid hostname." % _show(parsed.domain),
            fix="Generate the secret for the domain: 'mtg generate-secret --hex %s'."
                % (domain if domain_ok else "<domain>"))
    elif domain_ok and parsed.domain.lower().rstrip(".") != domain:
        add("TGP503", [path, domain_path],
            "The secret encodes %s but %s is %s." % (parsed.domain, domain_path, domain),
            fix="Regenerate the secret ('mtg generate-secret --hex %s') or set %s: %s." % (
                domain, domain_path, parsed.domain))


def _check_instances(doc, facts, add):
    """Each further mtg instance: its domain (a hostname, written canonically, no other instance's), its name (no
    other's), its secret (for its domain), its route (to it until it retires, then never to an mtg) and the
    certificate (its domain covered, retired or not: the name then gets the website)."""
    mtg = doc["mtg"]
    router = doc["router"]
    if mtg["instances"] and doc["web"]["kind"] != "caddy":
        add("TGP343", ["mtg.instances", "web.kind"], "mtg.instances lists %d more instance(s), but the web server is "
            "%s, set up for %s only." % (len(mtg["instances"]), doc["web"]["kind"], doc["domain"]))
    names = {}
    domains = {doc["domain"]: "domain"} if model.is_hostname(doc["domain"]) else {}
    cert = [name.lower().rstrip(".") for name in doc["web"]["cert_domains"] or []]
    for index, instance in enumerate(mtg["instances"]):
        path = "mtg.instances[%d]" % index
        domain, written = instance["domain"], facts.instance_domains_written[index]
        domain_ok = model.is_hostname(domain) and written == domain
        if not model.is_hostname(domain):
            add("TGP501", [path + ".domain"], "%s.domain %s is not a valid hostname." % (path, _show(written)))
        elif written != domain:
            add("TGP501", [path + ".domain"], "%s.domain %s is written %s; the roles use it as written. Write it in "
                "lower case, without white space or a trailing dot." % (path, domain, _show(written)))
        name = instance["name"]
        if domain_ok and domain in domains:
            add("TGP341", [domains[domain], path + ".domain"], "%s and %s.domain are both %s." % (
                domains[domain], path, domain))
            continue
        if name is not None and name in names:
            add("TGP341", [names[name], path + ".name"], "%s and %s.name are both %s." % (names[name], path, name))
            continue
        if domain_ok:
            domains[domain] = path + ".domain"
        if name is not None:
            names[name] = path + ".name"
        _check_secret(instance["secret"], path + ".secret", domain, path + ".domain", domain_ok, add)
        if domain_ok and doc["web"]["cert_domains"] is not None and domain not in cert \
                and "*." + domain.split(".", 1)[1] not in cert:
            add("TGP602", ["web.cert_domains", path + ".domain"],
                "web.cert_domains (%s) does not cover %s." % (", ".join(cert) or "empty", domain))
        if not (domain_ok and router and facts.router_kind_ok and name):
            continue
        index_route = _route_for(router, domain)
        target = facts.targets.get(router["routes"][index_route]["backend"]) if index_route is not None else None
        wanted = "mtg:%s" % name
        if instance["retire_at"] is not None and not instance["retired"] and not instance["retire_timer"]:
            add("TGP344", [path + ".retire_at", "router.kind"],
                "%s retires at %s behind %s: at the first run after it." % (
                    path, _moment(instance["retire_at"]), router["kind"]))
        if instance["retired"]:
            if is_mtg_target(target):
                add("TGP342", ["router.routes[%d]" % index_route, path + ".retire_at"],
                    "%s.domain %s retired at %s, but router.routes[%d] still sends it to %s." % (
                        path, domain, _moment(instance["retire_at"]), index_route, _target_label(doc, target)))
        elif target != wanted:
            add("TGP504", ["router.routes" if index_route is None else "router.routes[%d]" % index_route,
                           path + ".domain"],
                "SNI %s (%s) goes to %s, not to mtg instance %s." % (
                    domain, path, "nothing" if index_route is None else "backend %s (%s)" % (
                        router["routes"][index_route]["backend"], _target_label(doc, target)), name))


def _moment(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _check_mtg_version_and_key(doc, facts, add):
    fronting = doc["mtg"]["fronting"]
    if facts.version is None:
        return
    expected = model.mtg_fronting_key(doc["mtg"]["version"])
    given = facts.fronting_key_given
    if given and given != expected:
        add("TGP401", ["mtg.fronting.key", "mtg.version"],
            "mtg %s reads [domain-fronting].%s, but the configuration spells it %s."
            % (doc["mtg"]["version"], expected, given),
            fix="Spell it %s for mtg %s (or leave mtg.fronting.key empty)." % (expected, doc["mtg"]["version"]))
    host = fronting["host"]
    if host is not None and facts.version <= model.MTG_LAST_VERSION_WITH_FRONTING_IP and _ip(host) is None:
        add("TGP402", ["mtg.fronting.host", "mtg.version"],
            "mtg %s only accepts an IP address in [domain-fronting].ip, not %s." % (doc["mtg"]["version"],
                                                                                    _show(host)))


def _check_mtg_limits(doc, facts, add):
    idle = doc["mtg"]["idle_timeout"]
    seconds = _parse_duration(idle) if idle is not None else None
    if seconds is not None and seconds < MTG_MIN_IDLE_SECONDS:
        add("TGP203", ["mtg.idle_timeout"], "mtg.idle_timeout is %s (< 1m)." % idle)


def _check_stats(doc, facts, add):
    for path, role, address in mtg_listeners(doc["mtg"]):
        scope = _scope(_hostport(address)[0]) if role == "stats" and _hostport(address) else None
        if scope in ("wildcard", "public"):
            add("TGP305", [path], "The stats endpoint listens on %s." % address)
        elif scope == "private":
            add("TGP302", [path], "The stats endpoint listens on the private address %s." % address)


def _check_site(doc, facts, add):
    shared = doc["site_shared_with"]
    if shared:
        add("TGP603", ["site.shared_with"], "This host serves the same website as %s." % ", ".join(sorted(shared)))


def _check_certificate(doc, facts, add):
    domain = doc["domain"]
    names = doc["web"]["cert_domains"]
    if not model.is_hostname(domain) or names is None:
        return
    names = [name.lower().rstrip(".") for name in names]
    parent = domain.split(".", 1)[1]
    if domain not in names and "*." + parent not in names:
        add("TGP602", ["web.cert_domains", "domain"],
            "web.cert_domains (%s) does not cover %s." % (", ".join(names) or "empty", domain))


def _check_exposure(doc, facts, add):
    mtg = doc["mtg"]
    bind = _hostport(mtg["bind"]) if mtg["bind"] else None
    router = doc["router"]
    for path, role, address in mtg_listeners(mtg) if doc["kind"] == "sni_router" else []:
        scope = _scope(_hostport(address)[0]) if role == "bind" and _hostport(address) else None
        if scope in ("wildcard", "public"):
            add("TGP301", [path], "mtg listens on %s in an sni_router topology." % address)
        elif scope == "private":
            add("TGP302", [path], "mtg listens on the private address %s." % address)
    if bind and doc["kind"] == "mtg_direct":
        if _scope(bind[0]) == "loopback":
            add("TGP303", ["mtg.bind"], "mtg is the public entry point but listens on %s." % mtg["bind"])
        elif bind[1] != model.PUBLIC_TLS_PORT:
            add("TGP304", ["mtg.bind"], "mtg, the public entry point, listens on port %d." % bind[1])
    if router and router["listen"]:
        listen = [_hostport(addr) for addr in router["listen"]]
        if all(_scope(host) == "loopback" for host, port in listen):
            add("TGP303", ["router.listen"], "The router listens on loopback only (%s)." % ", ".join(router["listen"]))
        odd = sorted(set(port for host, port in listen if port != model.PUBLIC_TLS_PORT))
        if odd:
            add("TGP304", ["router.listen"], "The router listens on port(s) %s." % ", ".join(str(p) for p in odd))
    for bind in doc["web"]["https_bind"] or []:
        if _scope(_hostport(bind)[0]) in ("wildcard", "public"):
            add("TGP306", ["web.https_bind"], "The web TLS listener %s is reachable from outside." % bind)


def _coverage(binds, daemon):
    """(ipv4, ipv6) coverage of public listeners: 'yes', 'maybe' or 'no'."""
    v4, v6 = "no", "no"
    for bind in binds:
        host = _hostport(bind)[0]
        if _scope(host) in ("loopback", "name"):
            continue
        for family, addr, certain in _sockets(host, daemon):
            if family == 6:
                v6 = "yes"
            elif certain:
                v4 = "yes"
            elif v4 == "no":
                v4 = "maybe"
    return v4, v6


def _check_dual_stack(doc, facts, add):
    sets = []
    router = doc["router"]
    if router:
        rdaemon = _ROUTER_DAEMON.get(router["kind"], _GENERIC)
        sets.append(("router.listen", router["listen"] or [], rdaemon, model.PUBLIC_TLS_PORT))
        if router["http"]:
            sets.append(("router.http.listen", router["http"]["listen"] or [], rdaemon, model.PUBLIC_HTTP_PORT))
    elif doc["mtg"]["bind"]:
        sets.append(("mtg.bind", [doc["mtg"]["bind"]], _GO, model.PUBLIC_TLS_PORT))
    if facts.web_kind_ok and not (router and router["http"]):
        public_http = [b for b in doc["web"]["http_bind"] or [] if _scope(_hostport(b)[0]) not in ("loopback", "name")]
        if public_http:
            sets.append(("web.http_bind", public_http, _WEB_DAEMON.get(doc["web"]["kind"], _GENERIC),
                         model.PUBLIC_HTTP_PORT))
    v6_only_host = doc["public_ipv6"] and not doc["public_ipv4"]
    for var, binds, daemon, port in sets:
        v4, v6 = _coverage(binds, daemon)
        if v4 == "no" and v6 == "no":
            continue  # nothing public at all: TGP303 / TGP601 tell
        if v6 == "no" and doc["public_ipv6"]:
            add("TGP310", [var, "public_ipv6"], "%s (%s) has no IPv6 listener but public_ipv6 is %s."
                % (var, ", ".join(binds), doc["public_ipv6"]),
                fix="Add [::]:%d to %s." % (port, var))
        if v4 == "no" and not v6_only_host:
            add("TGP311", [var], "%s (%s) has no IPv4 listener." % (var, ", ".join(binds)),
                fix="Add 0.0.0.0:%d to %s." % (port, var))
        elif v4 == "maybe" and not v6_only_host:
            add("TGP312", [var], "%s (%s) reaches IPv4 only through [::] (net.ipv6.bindv6only=0)."
                % (var, ", ".join(binds)), fix="Add 0.0.0.0:%d to %s." % (port, var))


def _check_port_clashes(doc, facts, add):
    services = [s for s in _services(doc) if _hostport(s[3])]
    seen = set()
    for i, (target_a, role_a, var_a, bind_a, daemon_a) in enumerate(services):
        for target_b, role_b, var_b, bind_b, daemon_b in services[i + 1:]:
            if (target_a, role_a) == (target_b, role_b):
                continue
            host_a, port_a = _hostport(bind_a)
            host_b, port_b = _hostport(bind_b)
            if port_a != port_b or not _overlap(host_a, daemon_a, host_b, daemon_b):
                continue
            key = (var_a, var_b, port_a)
            if key in seen:
                continue
            seen.add(key)
            add("TGP320", [var_a, var_b], "%s (%s) and %s (%s) both take port %d." % (var_a, bind_a, var_b, bind_b,
                                                                                      port_a))


def _entry_points(doc):
    """Public TLS entry points (a fronting target reaching one of them is a loop)."""
    out = [("mtg.bind", doc["mtg"]["bind"], _GO)] if doc["mtg"]["bind"] else []
    router = doc["router"]
    if router:
        rdaemon = _ROUTER_DAEMON.get(router["kind"], _GENERIC)
        out.extend(("router.listen", bind, rdaemon) for bind in router["listen"] or [])
    return out


def _check_fronting(doc, facts, add):
    fronting = doc["mtg"]["fronting"]
    host, port = fronting["host"], fronting["port"]
    if host is None or port is None:
        return
    target = "%s:%d" % (host, port) if ":" not in host else "[%s]:%d" % (host, port)
    for var, bind, daemon in _entry_points(doc):
        if _reaches(doc, host, port, bind, daemon):
            add("TGP403", ["mtg.fronting.host", "mtg.fronting.port", var],
                "mtg fronts to %s, which is %s (%s): a fronting loop." % (
                    target, "mtg itself" if var == "mtg.bind" else "the router", bind))
            return
    web = doc["web"]
    wdaemon = _WEB_DAEMON.get(web["kind"], _GENERIC)
    if not any(_reaches(doc, host, port, bind, wdaemon) for bind in web["https_bind"] or []):
        add("TGP404", ["mtg.fronting.host", "mtg.fronting.port", "web.https_bind"],
            "mtg fronts to %s but the web server's TLS listener is %s." % (target, ", ".join(web["https_bind"] or [])))


def _proxy_mismatch(sender_on, receiver_on):
    return bool(sender_on) != bool(receiver_on)


def _check_proxy(doc, facts, add):
    mtg, web = doc["mtg"], doc["web"]
    if doc["kind"] == "mtg_direct" and mtg["proxy_protocol_listener"]:
        add("TGP104", ["mtg.proxy_protocol_listener", "kind"],
            "mtg.proxy_protocol_listener is on, but in mtg_direct clients connect to mtg directly.")
    fronting = mtg["fronting"]
    senders = []  # (var, host) of hops into the web TLS listener that send PROXY
    wdaemon = _WEB_DAEMON.get(web["kind"], _GENERIC)
    fronting_to_web = fronting["host"] is not None and fronting["port"] is not None and any(
        _reaches(doc, fronting["host"], fronting["port"], bind, wdaemon) for bind in web["https_bind"] or [])
    if fronting_to_web and fronting["proxy_protocol"] is not None and web["proxy_protocol"] is not None:
        if _proxy_mismatch(fronting["proxy_protocol"], web["proxy_protocol"]):
            add("TGP103", ["mtg.fronting.proxy_protocol", "web.proxy_protocol"],
                "mtg.fronting.proxy_protocol is %s but web.proxy_protocol is %s."
                % (_onoff(fronting["proxy_protocol"]), _onoff(web["proxy_protocol"])))
        elif fronting["proxy_protocol"]:
            senders.append(("mtg.fronting.host", fronting["host"]))
    router = doc["router"]
    if router and facts.router_kind_ok:
        for name in sorted(router["backends"]):
            backend = router["backends"][name]
            send = backend["send_proxy"]
            target = facts.targets.get(name)
            expects = _receiver_expects(doc, target)
            if send is None or expects is None:
                continue
            var = "router.backends.%s.send_proxy" % name
            if _proxy_mismatch(send != "none", expects):
                if is_mtg_target(target):
                    add("TGP101", [var, "mtg.proxy_protocol_listener"],
                        "The router sends %s to mtg but mtg.proxy_protocol_listener is %s." % (
                            _send_label(send), _onoff(expects)))
                elif target in ("web", "web_http"):
                    receiver = "web.proxy_protocol" if target == "web" else "web.http_bind"
                    add("TGP102", [var, receiver], "The router sends %s to %s, which %s." % (
                        _send_label(send), _target_label(doc, target),
                        "expects PROXY" if expects else "does not expect PROXY"))
                else:
                    add("TGP109", [var, "other_services[%d].proxy_protocol" % target[1]],
                        "The router sends %s to %s, which %s." % (
                            _send_label(send), _target_label(doc, target),
                            "expects PROXY" if expects else "does not expect PROXY"))
            elif send != "none" and target == "web":
                senders.append(("router.backends.%s.address" % name, _split_raw(backend["address"])[0]))
        sends = dict((name, b["send_proxy"]) for name, b in router["backends"].items() if b["send_proxy"])
        caps = model.ROUTER_CAPABILITIES.get(router["kind"]) or {}
        if caps.get("send_proxy") == ("none",):
            asking = sorted(name for name, send in sends.items() if send != "none")
            if asking:
                add("TGP107", ["router.backends.%s.send_proxy" % name for name in asking] + ["router.kind"],
                    "sslh is asked to send PROXY protocol to backend(s) %s." % ", ".join(asking))
        if caps and not caps["proxy_per_backend"] and sends:
            asked = set(sends.values())
            if len(asked) > 1 or asked - set(caps["send_proxy"]):
                add("TGP108", ["router.backends.%s.send_proxy" % name for name in sorted(sends)],
                    "nginx_stream backends ask for %s." % ", ".join(
                        "%s=%s" % (name, sends[name]) for name in sorted(sends)))
    if web["proxy_protocol"] and web["proxy_allow"] is not None:
        if not web["proxy_allow"]:
            add("TGP105", ["web.proxy_allow", "web.proxy_protocol"],
                "web.proxy_protocol is on but web.proxy_allow is empty.")
            return
        nets = [ipaddress.ip_network(cidr, strict=False) for cidr in web["proxy_allow"]]
        for var, host in senders:
            for addr in _sender_addrs(doc, host):
                if not any(ipaddress.ip_address(addr) in net for net in nets):
                    add("TGP106", ["web.proxy_allow", var],
                        "%s connects to the web server from %s, which web.proxy_allow (%s) does not cover."
                        % (var, addr, ", ".join(web["proxy_allow"])),
                        fix="Add %s to web.proxy_allow." % ("%s/32" % addr if ":" not in addr else "%s/128" % addr))
                    break


def _sender_addrs(doc, host):
    """Source addresses of a local connection to ``host`` (the kernel picks the destination itself)."""
    return [addr for family, addr, local in _dest_addrs(doc, host) if local and _ip(addr) is not None]


def _onoff(value):
    return "on" if value else "off"


def _send_label(send):
    return "no PROXY header" if send == "none" else "PROXY %s" % send


def _flavour(norm, router, rkind):
    """sslh's flavour (fork, select, ev); the other routers have none."""
    if rkind != "sslh":
        if router.get("flavour") not in (None, _MISSING):
            norm.add("TGP007", ["router.flavour", "router.kind"], "router.flavour is sslh's; %s has none." % rkind,
                     fix="Remove router.flavour (sslh_flavour).")
        return None
    return norm.choice(router, "flavour", "router", model.SSLH_FLAVOURS, model.SSLH_DEFAULT_FLAVOUR)


def _check_sslh_select(doc, router, add):
    if router["flavour"] != "select" or router["listen"] is None:
        return
    limit = model.sslh_select_max_sessions(len(router["listen"]), router["version"])
    declared = (doc["tuning"] or {}).get("capacity", {}).get("connections")
    if declared is None:
        add("TGP211", ["router.flavour", "capacity"],
            "sslh-select holds at most %d sessions here (%d listener(s)) and no capacity is declared." % (
                limit, len(router["listen"])))
    elif declared > limit:
        add("TGP210", ["router.flavour", "capacity.connections"],
            "capacity.connections is %d but sslh-select holds at most %d sessions here (%d listener(s))." % (
                declared, limit, len(router["listen"])))


def _check_router(doc, facts, add):
    router = doc["router"]
    kind = router["kind"]
    if router["terminates_tls"]:
        add("TGP201", ["router.terminates_tls"], "router.terminates_tls is on.")
    if router["transparent"]:
        _check_transparent(doc, router, add)
    if kind == "sslh":
        _check_sslh_select(doc, router, add)
    if kind in ("haproxy", "nginx_stream"):
        short = []
        for key in ("client", "server", "tunnel"):
            value = router["timeouts"][key]
            seconds = _parse_duration(value) if value is not None else None
            if seconds is not None and seconds < MTPROTO_IDLE_SECONDS:
                short.append("router.timeouts.%s" % key)
        if short:
            add("TGP202", short, "%s shorter than 1h%s." % (
                ", ".join("%s=%s" % (var, router["timeouts"][var.rsplit(".", 1)[1]]) for var in short),
                " (nginx proxy_timeout is their minimum)" if kind == "nginx_stream" else ""))
        maxconn, concurrency = router["maxconn"], doc["mtg"]["concurrency"]
        if maxconn is not None and concurrency is not None and concurrency > maxconn:
            add("TGP204", ["mtg.concurrency", "router.maxconn"],
                "mtg.concurrency is %d but router.maxconn is %d." % (concurrency, maxconn))
    minimum = ROUTER_MIN_VERSIONS.get(kind)
    version = _loose_version(router["version"]) if router["version"] else None
    if minimum and version and version < minimum:
        add("TGP205", ["router.version", "router.kind"], "%s %s lacks SNI routing (needs %s)." % (
            kind, router["version"], ".".join(str(part) for part in minimum)))
    _check_routes(doc, facts, add)


def _check_transparent(doc, router, add):
    """sslh's transparent mode: IPv4 listeners, backends on IPv4 loopback."""
    if router["kind"] != "sslh":
        add("TGP207", ["router.transparent", "router.kind"],
            "router.transparent is on for %s." % router["kind"])
        return
    v6 = [addr for addr in router["listen"] or [] if (_hostport(addr) or ("", 0))[0].count(":")]
    if v6:
        add("TGP208", ["router.listen", "router.transparent"],
            "sslh is transparent and listens on %s." % ", ".join(v6))
    for name in sorted(router["backends"]):
        parsed = _split_raw(router["backends"][name]["address"])
        addrs = _dest_addrs(doc, parsed[0]) if parsed else []
        if not addrs or any(family != 4 or not _ip(addr) or not _ip(addr).is_loopback
                            for family, addr, _local in addrs):
            add("TGP209", ["router.backends.%s.address" % name, "router.transparent"],
                "sslh is transparent and backend %s is %s." % (name, router["backends"][name]["address"]))


def _check_routes(doc, facts, add):
    router = doc["router"]
    kind = router["kind"]
    routes = router["routes"]
    backends = router["backends"]
    undefined = set()
    for index, route in enumerate(routes):
        if route["backend"] is not None and route["backend"] not in backends:
            undefined.add(route["backend"])
            add("TGP509", ["router.routes[%d].backend" % index, "router.backends"],
                "router.routes[%d] sends traffic to backend %s, which router.backends does not define." % (
                    index, _show(route["backend"])))
        caps = model.ROUTER_CAPABILITIES.get(kind)
        if caps and route["match"] in ROUTE_MATCHES and route["match"] not in caps["matches"]:
            add("TGP512", ["router.routes[%d].match" % index, "router.kind"],
                "router.routes[%d] is a %s route, which %s cannot do: %s." % (
                    index, route["match"], kind, model.ROUTER_CANNOT.get((kind, route["match"]), "not supported")))
    for name in sorted(backends):
        target = facts.targets.get(name)
        if backends[name]["address"] and target in (None, "router"):
            add("TGP510", ["router.backends.%s.address" % name],
                "Backend %s points at %s, where %s." % (
                    name, backends[name]["address"],
                    "the router itself listens (a loop)" if target == "router" else "no deployed service listens"))
    seen = {}
    for index, route in enumerate(routes):
        if route["match"] is None:
            continue
        key = (route["match"], route["value"])
        if key in seen:
            add("TGP506", ["router.routes[%d]" % seen[key], "router.routes[%d]" % index],
                "router.routes[%d] repeats router.routes[%d] (%s%s)." % (
                    index, seen[key], route["match"], " " + route["value"] if route["value"] else ""))
        else:
            seen[key] = index
    if not any(route["match"] == "default" for route in routes):
        add("TGP206", ["router.routes"], "No route has match: default.")
    if kind in ("haproxy", "sslh"):
        for j, later in enumerate(routes):
            if later["match"] not in ("sni_exact", "sni_suffix", "alpn"):
                continue
            for i, earlier in enumerate(routes[:j]):
                if (earlier["match"], earlier["value"]) == (later["match"], later["value"]):
                    continue
                if earlier["backend"] == later["backend"] or not _shadows(earlier, later, kind):
                    continue
                add("TGP507", ["router.routes[%d]" % i, "router.routes[%d]" % j],
                    "router.routes[%d] (%s%s -> %s) is never reached: router.routes[%d] (%s%s -> %s) matches first."
                    % (j, later["match"], " " + later["value"] if later["value"] else "", later["backend"],
                       i, earlier["match"], " " + earlier["value"] if earlier["value"] else "", earlier["backend"]))
                break
    domain = doc["domain"]
    if not model.is_hostname(domain):
        return
    index = _route_for(router, domain)
    magic_ok = True
    if index is None:
        magic_ok = False
        add("TGP504", ["router.routes", "domain"], "No route matches SNI %s and there is no default." % domain)
    else:
        backend = routes[index]["backend"]
        target = facts.targets.get(backend)
        if backend not in undefined and target is not None and target != "mtg":
            magic_ok = False
            add("TGP504", ["router.routes[%d]" % index, "domain"],
                "SNI %s goes to backend %s (%s), not to mtg%s." % (
                    domain, backend, _target_label(doc, target), _mtg_routes_hint(router, facts)))
    if magic_ok:
        for i, route in enumerate(routes):
            if route["match"] in ("sni_exact", "sni_suffix") and facts.targets.get(route["backend"]) == "mtg" \
                    and not _route_covers(route, domain):
                add("TGP505", ["router.routes[%d].value" % i, "domain"],
                    "router.routes[%d] sends %s to mtg, but clients use %s." % (i, route["value"], domain))
        if kind in ("haproxy", "sslh") and index is not None:
            for i, route in enumerate(routes[:index]):
                if route["match"] == "alpn":
                    add("TGP508", ["router.routes[%d]" % i, "router.routes[%d]" % index],
                        "router.routes[%d] (alpn %s) comes before the route for %s." % (i, route["value"], domain))
                    break


def _mtg_routes_hint(router, facts):
    names = ["router.routes[%d] (%s)" % (i, r["value"]) for i, r in enumerate(router["routes"])
             if r["value"] and facts.targets.get(r["backend"]) == "mtg"]
    return "; routes to mtg: %s" % ", ".join(names) if names else ""


def _shadows(earlier, later, kind):
    if earlier["match"] == "default":
        return kind == "sslh"
    if earlier["match"] != "sni_suffix" or later["match"] == "alpn":
        return False
    return _route_covers(earlier, later["value"])


def _check_acme(doc, facts, add):
    web = doc["web"]
    if web["http_bind"] is None:
        return
    if web["acme"]["challenge"] != "http-01":
        _check_http_passthrough(doc, add)
        return
    wdaemon = _WEB_DAEMON.get(web["kind"], _GENERIC)
    router = doc["router"]
    if router and router["http"]:
        target = router["http"]["acme_passthrough_to"]
        if target is None:
            add("TGP601", ["web.acme.challenge", "router.http.acme_passthrough_to"],
                "HTTP-01 is used but the router owns :80 and passes no ACME challenge through.")
            return
        host, port = _split_raw(target)
        if not any(_reaches(doc, host, port, bind, wdaemon) for bind in web["http_bind"]):
            add("TGP601", ["router.http.acme_passthrough_to", "web.http_bind"],
                "The router passes ACME challenges to %s but the web server's HTTP listener is %s." % (
                    target, ", ".join(web["http_bind"]) or "absent"))
        return
    public = [b for b in web["http_bind"] if _hostport(b)[1] == model.PUBLIC_HTTP_PORT
              and _scope(_hostport(b)[0]) in ("wildcard", "public", "private")]
    if not public:
        add("TGP601", ["web.http_bind", "web.acme.challenge"],
            "HTTP-01 is used, nothing else owns :80, and the web server listens on %s." % (
                ", ".join(web["http_bind"]) or "no HTTP address"))


def _check_http_passthrough(doc, add):
    """Without HTTP-01 (TGP601 covers it then): the router passes all of :80 somewhere that nothing serves."""
    router = doc["router"]
    target = router["http"]["acme_passthrough_to"] if router and router.get("http") else None
    if target is None or _split_raw(target) is None:
        return
    reached = _target(doc, target)
    if reached in (None, "router"):
        add("TGP510", ["router.http.acme_passthrough_to"],
            "The router passes :80 to %s, where %s." % (
                target, "the router itself listens (a loop)" if reached == "router" else "no deployed service listens"))


def _check_dns(doc, facts, add, resolver):
    domain = doc["domain"]
    if model.is_hostname(domain) and (doc["public_ipv4"] or doc["public_ipv6"]):
        addrs = _resolve(resolver, domain)
        if not addrs:
            add("TGP901", ["domain"], "%s does not resolve." % domain)
        else:
            v4 = sorted(a for a in addrs if ":" not in a)
            v6 = sorted(a for a in addrs if ":" in a)
            for family, mine, found, var in ((4, doc["public_ipv4"], v4, "public_ipv4"),
                                             (6, doc["public_ipv6"], v6, "public_ipv6")):
                record = "A" if family == 4 else "AAAA"
                if mine and mine not in found:
                    add("TGP901", ["domain", var], "%s %s records are %s, not %s=%s." % (
                        domain, record, ", ".join(found) or "absent", var, mine))
                elif not mine and found:
                    add("TGP901", ["domain", var], "%s has %s records (%s) but %s is not set." % (
                        domain, record, ", ".join(found), var))
    fronting = doc["mtg"]["fronting"]
    host, port = fronting["host"], fronting["port"]
    if host and port and _ip(host) is None and host not in ("localhost", domain):
        mine = [a for a in (doc["public_ipv4"], doc["public_ipv6"]) if a]
        addrs = _resolve(resolver, host)
        if any(_canon(a) in mine or (_ip(a) is not None and _ip(a).is_loopback) for a in addrs):
            for var, bind, daemon in _entry_points(doc):
                if any(_reaches(doc, _canon(a), port, bind, daemon) for a in addrs):
                    add("TGP902", ["mtg.fronting.host", var],
                        "mtg fronts to %s:%d, which resolves to %s - this host's %s (%s)." % (
                            host, port, ", ".join(addrs), var, bind))
                    break


def _resolve(resolver, name):
    try:
        return sorted(set(_canon(a) for a in resolver(name) or ()))
    except Exception:  # pylint: disable=broad-except
        return []


def default_resolver(name):
    """A resolver for ``validate``: every A/AAAA address of ``name`` via the system resolver."""
    infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
    return sorted(set(info[4][0] for info in infos))


def validate(topology, resolver=None):
    """Every violation in a host's topology, as Finding objects sorted by code.

    ``resolver`` (optional): callable name -> iterable of IP address strings.
    DNS checks (warnings) run only when it is given.
    """
    doc, facts, findings = _normalise(_without_unset(topology))
    if doc is None:
        return findings

    def add(code, variables, msg, breaks=None, fix=None):
        findings.append(Finding(code, variables, msg, breaks, fix))

    checks = [_check_domain_and_secret, _check_instances, _check_mtg_version_and_key, _check_mtg_limits, _check_stats,
              _check_certificate, _check_capacity, _check_platform, _check_site]
    if facts.kind_ok:
        checks += [_check_exposure, _check_dual_stack, _check_port_clashes, _check_fronting, _check_proxy,
                   _check_acme]
        if doc["router"] and facts.router_kind_ok:
            checks.append(_check_router)
    for check in checks:
        check(doc, facts, add)
    if resolver is not None and facts.kind_ok:
        _check_dns(doc, facts, add, resolver)
    return sorted(findings, key=lambda finding: finding.code)


def format_findings(findings):
    """One line per finding, for messages."""
    return "\n".join("- %s" % finding for finding in findings)


# ---- the validate step of site.yml and migrate.yml (the topology_validate
# ---- module and its action plugin, one implementation)

CHECK_DOCUMENT_SPEC = dict(
    topology=dict(type="dict", required=True),
    resolve_dns=dict(type="bool", default=False),
    variables=dict(type="dict", default={}),
)


def secret_forms(topology):
    """Every spelling of the topology's secret, so that the result can be masked of all of them."""
    mtg = topology.get("mtg") if isinstance(topology, dict) else None
    secret = mtg.get("secret") if isinstance(mtg, dict) else None
    if not isinstance(secret, str) or not secret.strip():
        return []
    forms = [secret, secret.strip()]
    try:
        parsed = model.Secret.parse(secret)
    except ValueError:
        return forms
    return forms + [parsed.hex(), parsed.hex().upper(), parsed.base64()]


def finding_text(finding):
    return "%s [%s]: %s Fix: %s" % (finding.code, ", ".join(finding.vars), finding.msg, finding.fix)


def error_message(errors):
    return "The topology has %d error(s); nothing was changed.\n%s" % (
        len(errors), "\n".join("- " + finding_text(f) for f in errors))


def check_document(topology, resolve_dns, resolver=None, variables=None):
    """The findings and the result document (no Ansible calls, for unit tests).

    ``variables`` maps a topology path to the user's variable (e.g.
    ``mtg.bind`` -> ``mtg_bind_to``): findings name it, with the path.
    """
    if resolve_dns:
        resolver = resolver or default_resolver
    else:
        resolver = None
    findings = validate(topology, resolver=resolver)
    names = variables or {}
    for finding in findings:
        finding.vars = ["%s (%s)" % (names[path], path) if path in names else path for path in finding.vars]
    result = dict(
        changed=False,
        findings=[f.as_dict() for f in findings],
        errors=[f.as_dict() for f in errors(findings)],
        warning_findings=[f.as_dict() for f in warnings(findings)],
        topology=normalise(topology) or {},
    )
    return findings, result
