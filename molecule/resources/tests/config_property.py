# -*- coding: utf-8 -*-
"""Property: every input the model accepts gives a configuration the daemon itself accepts.

Random valid topologies (routes of every kind with random SNI names, suffixes, ALPN tokens, backend names,
loopback ports, timeouts, PROXY flags) and random strings of every kind that reaches a configuration
(module_utils/values.py) are rendered on the controller with the roles' own templates (Ansible's templar, the
role's defaults and vars) or the model's own renderer (mtg's TOML), copied onto a scenario host and checked
there by the real daemon: ``haproxy -c``, ``nginx -t`` (through the roles' candidate checker), ``sslh -V``,
``caddy validate`` and ``mtg access``. A case the validator or a kind check rejects never reaches a
configuration, so it is left out (and counted); the rest must all pass.

The seed is printed; TGP_PROPERTY_SEED=<seed> repeats a run.
"""

import io
import json
import os
import random
import string
import subprocess
import tarfile
import time

import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

init_plugin_loader()  # the collection's filters, for the roles' templates (before its first import below)

from ansible_collections.tgproxy.stealth.plugins.module_utils import (  # noqa: E402  pylint: disable=wrong-import-position
    topology, validator, values, variables)

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

CASES = int(os.environ.get("TGP_PROPERTY_CASES", "30"))
LOWER = string.ascii_lowercase
ALNUM = LOWER + string.digits


def seed():
    value = int(os.environ.get("TGP_PROPERTY_SEED") or time.time())
    print("property seed: TGP_PROPERTY_SEED=%d" % value)
    return value


# --------------------------------------------------------------------------
# random values of each kind (each checked against its kind before use)
# --------------------------------------------------------------------------
def _label(rng):
    body = "".join(rng.choice(ALNUM + "-") for dummy in range(rng.randint(1, 14)))
    return (rng.choice(ALNUM) + body.strip("-") + rng.choice(ALNUM))[:63]


def hostname(rng):
    name = ".".join(_label(rng) for dummy in range(rng.randint(2, 4)))
    name = name if not name.replace(".", "").isdigit() else "h" + name
    assert values.is_hostname(name), name
    return name


def alpn(rng):
    token = rng.choice(ALNUM) + "".join(rng.choice(ALNUM + "._/-") for dummy in range(rng.randint(0, 12)))
    assert values.is_alpn(token), token
    return token


def backend_name(rng):
    name = rng.choice(string.ascii_letters) + "".join(
        rng.choice(string.ascii_letters + string.digits + "_-") for dummy in range(rng.randint(0, 20)))
    assert values.is_backend_name(name), name
    return name


def duration(rng, units=("s", "m", "h")):
    value = "%d%s" % (rng.randint(1, 59), rng.choice(units))
    assert values.parse_duration(value) is not None
    return value


def go_duration(rng):
    parts = rng.sample(["h", "m", "s", "ms"], rng.randint(1, 3))
    order = ["h", "m", "s", "ms"]
    value = "".join("%d%s" % (rng.randint(1, 59), unit) for unit in sorted(parts, key=order.index))
    assert values.is_go_duration(value), value
    return value


def path(rng):
    value = "/" + "/".join("".join(rng.choice(ALNUM + "._+@,=-") for dummy in range(rng.randint(1, 12)))
                           for dummy in range(rng.randint(1, 4)))
    value = "/".join(part if part not in (".", "..") else "x" for part in value.split("/"))
    assert values.path_problem(value) is None, value
    return value


def text(rng):
    alphabet = string.ascii_letters + string.digits + " .,:!?()&%@+=-_/*|~^[]"
    value = "".join(rng.choice(alphabet) for dummy in range(rng.randint(1, 60))).strip() or "x"
    assert values.kind_problem("text", value) is None, value
    return value


def url(rng, scheme="https"):
    path = "".join(rng.choice(ALNUM + "._~&+,=:@/?-") if rng.random() < .95 else "%%%02X" % rng.randint(0, 255)
                   for dummy in range(rng.randint(0, 30)))
    value = "%s://%s%s/%s" % (scheme, hostname(rng), (":%d" % rng.randint(1, 65535)) if rng.random() < .3 else "",
                              path)
    assert values.is_url(value, (scheme,)), value
    return value


def loopback(rng, used):
    while True:
        port = rng.randint(1025, 60000)
        if port not in used:
            used.add(port)
            return "127.0.0.1:%d" % port


# --------------------------------------------------------------------------
# a random valid topology behind a router of ``kind``
# --------------------------------------------------------------------------
def router_topology(rng, kind):
    used = {80, 443, 3128, 3129, 8080, 8443}
    proxy = rng.choice([True, False]) if kind != "sslh" else False
    domain = hostname(rng)
    backends, routes = {}, [{"match": "sni_exact", "value": domain, "backend": "mtg"}]
    for dummy in range(rng.randint(0, 4)):
        name = backend_name(rng)
        if name in ("mtg", "web") or name in backends:
            continue
        # sslh sends no PROXY header (TGP107); nginx_stream one v1 setting for all backends (TGP108)
        send = {"sslh": "none", "nginx_stream": "v1" if proxy else "none"}.get(kind) or rng.choice(["none", "v1", "v2"])
        backends[name] = {"address": loopback(rng, used), "send_proxy": send}
        match = rng.choice(["sni_exact", "alpn"] + ([] if kind == "sslh" else ["sni_suffix"]))
        value = alpn(rng) if match == "alpn" else hostname(rng)
        routes.insert(rng.randint(1, len(routes)), {"match": match, "value": value, "backend": name})
    routes.append({"match": "default", "backend": "web"})
    router = {"kind": kind, "routes": routes}
    if backends:  # given, they replace the model's default pair: name mtg and web too
        router["backends"] = dict(backends, mtg={"address": "127.0.0.1:3128"}, web={"address": "127.0.0.1:8443"})
    if kind != "sslh":
        router["maxconn"] = rng.randint(100, 20000)
        # client, server and tunnel at least MTProto's idle hour (TGP202)
        router["timeouts"] = {"client": "%dh" % rng.randint(1, 48), "server": "%dm" % rng.randint(60, 6000),
                              "tunnel": "%ds" % rng.randint(3600, 360000), "connect": duration(rng, ("s",))}
    other = [{"name": name, "bind": spec["address"], "proxy_protocol": spec["send_proxy"] != "none"}
             for name, spec in backends.items()]
    doc = {"kind": "sni_router", "domain": domain, "router": router, "web": {"kind": "caddy"}, "mtg": {},
           "proxy_protocol": proxy if kind != "haproxy" else rng.choice([True, False, None]), "other_services": other}
    if kind == "sslh":
        router["flavour"] = rng.choice(["fork", "ev"])
    return doc


def valid(doc):
    """The findings that would stop site.yml (errors), as codes."""
    return [f.code for f in validator.validate(doc) if f.severity == "error"]


# --------------------------------------------------------------------------
# rendering with the roles' own templates
# --------------------------------------------------------------------------
def _trust(value):
    """The roles' own files are trusted templates (Ansible trusts what it loads from a role)."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trust(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trust(v) for v in value]
    return value


def _templar_render(role, template, case):
    variables_ = {}
    for part in ("defaults", "vars"):
        path = os.path.join(PROJECT, "roles", role, part, "main.yml")
        if os.path.exists(path):
            with open(path) as handle:
                variables_.update(yaml.safe_load(handle) or {})
    variables_ = _trust(variables_)
    variables_.update(ansible_facts={"processor_vcpus": 2, "architecture": "x86_64", "memtotal_mb": 2048},
                      ansible_managed="Ansible managed", inventory_hostname="property-case")
    variables_.update(case)
    with open(os.path.join(PROJECT, "roles", role, "templates", template)) as handle:
        source = handle.read()
    # as the template module renders a file: no backslash escaping, trim_blocks on
    return Templar(loader=DataLoader(), variables=variables_).template(
        trust_as_template(source), escape_backslashes=False, overrides=dict(trim_blocks=True))


def render_router(kind, doc):
    name = {"haproxy": ("haproxy", "haproxy.cfg.j2", {"haproxy_topology": doc, "haproxy_listen_ports": {}}),
            "nginx_stream": ("nginx_stream", "tgproxy-stream.conf.j2", {"nginx_stream_topology": doc}),
            "sslh": ("sslh", "sslh.cfg.j2", {"sslh_topology": doc})}[kind]
    return _templar_render(*name)


def caddy_case(rng):
    case = {"caddy_domain": hostname(rng), "caddy_site_title": text(rng), "caddy_site_root": path(rng),
            "caddy_log_dir": path(rng),
            # further mtg instances' domains: a site block each
            "caddy_extra_domains": rng.choice([[], [hostname(rng) for dummy in range(rng.randint(1, 3))]]),
            "caddy_https_port": rng.randint(1025, 60000), "caddy_proxy_protocol": rng.choice([True, False]),
            "caddy_proxy_protocol_timeout": go_duration(rng), "caddy_http3": rng.choice([True, False]),
            "caddy_acme_email": "%s@%s" % (_label(rng), hostname(rng)),
            "caddy_acme_ca": rng.choice(["letsencrypt", "zerossl", url(rng)]),
            "caddy_reverse_proxy": rng.choice(["", "http://%s:%d" % (hostname(rng), rng.randint(1, 65535)),
                                               "https://%s" % hostname(rng), "127.0.0.1:%d" % rng.randint(1, 65535)])}
    assert variables.value_errors(case) == [], case
    return case


def mtg_case(rng):
    case = {"mtg_domain": hostname(rng), "mtg_tolerate_time_skewness": go_duration(rng),
            "mtg_blocklist_urls": [url(rng) for dummy in range(rng.randint(0, 2))],
            "mtg_blocklist_update_each": go_duration(rng), "mtg_doppelganger_raid_each": go_duration(rng),
            "mtg_doppelganger_urls": rng.choice([None, [url(rng) for dummy in range(rng.randint(1, 3))]]),
            "mtg_timeout_tcp": rng.choice(["", go_duration(rng)]), "mtg_timeout_idle": rng.choice(["", go_duration(rng)]),
            # resolvers by address: `mtg access` (the checker) resolves a DoH or DoT host name at start, and the
            # test bed has no DNS for random names
            "mtg_dns": rng.choice(["", "9.9.9.9", "udp://[2620:fe::fe]", "udp://9.9.9.9:53", "tls://9.9.9.9:853",
                                   "https://%s/%s" % (rng.choice(["9.9.9.9", "[2620:fe::fe]"]), _label(rng))]),
            "mtg_proxies": rng.choice([[], ["socks5://%s:%d" % (rng.choice(["10.0.0.1", hostname(rng)]),
                                                                rng.randint(1, 65535))]]),
            "mtg_anti_replay_max_size": rng.choice(["1mib", "%dkib" % rng.randint(1, 4096), "16 mb"]),
            "mtg_stats_bind_to": "127.0.0.1:%d" % rng.randint(1025, 60000)}
    assert variables.value_errors(case) == [], case
    return case


def render_mtg(case):
    spec = json.loads(_templar_render_spec(case))
    doc = dict(topology.mtg_config(spec))
    doc["secret"] = "ee" + "11" * 16 + spec["domain"].encode().hex()
    return topology.dump_toml(doc, first_keys=("secret", "bind-to"))


def _templar_render_spec(case):
    """The mtg role's __mtg_spec for these inputs, as JSON (the role's vars/main.yml, templated)."""
    variables_ = {}
    for part in ("defaults", "vars"):
        with open(os.path.join(PROJECT, "roles", "mtg", part, "main.yml")) as handle:
            variables_.update(yaml.safe_load(handle) or {})
    variables_ = _trust(variables_)
    variables_.update(ansible_facts={"architecture": "x86_64"}, inventory_hostname="property-case",
                      mtg_public_port=443)
    variables_.update(case)
    return Templar(loader=DataLoader(), variables=variables_).template(trust_as_template("{{ __mtg_spec | to_json }}"))


# --------------------------------------------------------------------------
# checking on the host with the daemons' own checkers
# --------------------------------------------------------------------------
def check_on_host(container, files, command):
    """Copy ``files`` (name -> text) into /tmp/tgp-property on ``container``; run ``command`` (with {} for each
    file) for each; return [(name, rc, output)] of the failures."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in files.items():
            data = body.encode()
            info = tarfile.TarInfo("tgp-property/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "exec", container, "rm", "-rf", "/tmp/tgp-property"], check=True)
    subprocess.run(["docker", "exec", "-i", container, "tar", "-x", "-C", "/tmp"], input=buf.getvalue(), check=True)
    script = "cd /tmp/tgp-property; for f in *; do out=$(%s 2>&1) || { echo \"FAIL $f\"; echo \"$out\" | tail -5; }; done" \
        % command.replace("{}", "\"$f\"")
    proc = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True, text=True,
                          timeout=900, check=False)
    return proc.stdout.strip()


# --------------------------------------------------------------------------
# the property, per daemon
# --------------------------------------------------------------------------
CHECKERS = {
    "haproxy": "haproxy -c -q -f {}",
    # the roles' own candidate checker: the whole nginx tree with the candidate in place of the stream file
    "nginx_stream": "/usr/local/libexec/tgproxy/nginx-check-candidate /etc/nginx/modules-enabled/90-tgproxy-stream.conf {}",
    "sslh": "/usr/sbin/sslh -F{} -V",
    "caddy": "/usr/bin/caddy validate --adapter caddyfile --config {}",
    "mtg": "/usr/local/bin/mtg access --ipv4 127.0.0.1 --ipv6 ::1 {}",
}


def cases(daemon, rng, count=CASES):
    """(files, left_out): ``count`` rendered configurations the model accepts, and the rejected draws."""
    files, left_out = {}, 0
    while len(files) < count:
        if daemon in ("haproxy", "nginx_stream", "sslh"):
            doc = router_topology(rng, daemon)
            if valid(doc):
                left_out += 1
                continue
            files["case%03d.cfg" % len(files)] = render_router(daemon, doc)
        elif daemon == "caddy":
            files["case%03d.Caddyfile" % len(files)] = _templar_render("caddy", "Caddyfile.j2", caddy_case(rng))
        else:
            files["case%03d.toml" % len(files)] = render_mtg(mtg_case(rng))
        if left_out > 10 * count:
            raise AssertionError("the generator draws mostly invalid %s topologies" % daemon)
    return files, left_out


def assert_daemon_accepts_every_accepted_input(container, daemon, count=CASES):
    rng = random.Random(seed())
    files, left_out = cases(daemon, rng, count)
    failures = check_on_host(container, files, CHECKERS[daemon])
    print("%s: %d random accepted inputs checked by the daemon (%d draws the model rejected)" % (
        daemon, len(files), left_out))
    assert not failures, "%s rejected configurations the model accepted:\n%s\n(first failing file:\n%s)" % (
        daemon, failures, files[failures.split()[1]] if failures.startswith("FAIL ") else "")
