# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kind of every string role variable, checked before it reaches a config.

Part of the collection's topology model. Each role's preflight passes its
variables (``^<role>_``) to the filter ``tgp_value_errors``, which checks each
against its kind here with the parsers of ``values.py``: nothing the inventory
sets reaches haproxy.cfg, nginx.conf, sslh's libconfig, a Caddyfile, mtg's
TOML, a systemd unit or an environment file unchecked.

``tests/unit/plugins/module_utils/test_variables.py`` keeps this table equal to
the roles' argument specs: a new string variable without a kind fails it.
A leading ``?`` means the empty string (or null) passes here: "not set" (a
required one, such as the domain, is then reported by the role's own
preflight or the validator, with what to set).
Variables checked as a whole by the model (the topology documents, the
capacity, the secret) are listed in ``BY_THE_MODEL`` with where.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

try:
    from ansible_collections.tgproxy.stealth.plugins.module_utils import values
except ImportError:  # imported by path (tests, test bed tools)
    import values  # type: ignore

KINDS = {
    # acme_sh
    "acme_sh_version": "release_version",
    "acme_sh_release_base_url": "url",
    "acme_sh_release_checksum": "?release_checksum",
    "acme_sh_install_dir": "path",
    "acme_sh_extra_packages": "list:package",
    "acme_sh_user": "unix_name",
    "acme_sh_group": "unix_name",
    "acme_sh_home": "path",
    "acme_sh_domains": "list:hostname",
    "acme_sh_email": "?email",
    "acme_sh_ca": "ca",
    "acme_sh_ca_bundle": "?path",
    "acme_sh_webroot": "path",
    "acme_sh_dns_provider": "?dns_provider",
    "acme_sh_dns_env": "keys:env_key",
    "acme_sh_key_file": "path",
    "acme_sh_fullchain_file": "path",
    "acme_sh_reload_service": "?unit_name",
    "acme_sh_renew_on_calendar": "calendar",
    "acme_sh_renew_randomized_delay": "simple_duration",
    # caddy
    "caddy_version": "release_version",
    "caddy_release_base_url": "url",
    "caddy_repository_url": "url",
    "caddy_repository_key_url": "url",
    "caddy_binary": "path",
    "caddy_user": "unix_name",
    "caddy_group": "unix_name",
    "caddy_config_dir": "path",
    "caddy_data_dir": "path",
    "caddy_log_dir": "path",
    "caddy_domain": "?hostname",
    "caddy_site_root": "path",
    "caddy_extra_domains": "list:hostname",
    "caddy_site_title": "?text",
    "caddy_reverse_proxy": "?upstream",
    "caddy_http_bind": "list:ip",
    "caddy_https_bind": "list:ip",
    "caddy_proxy_protocol_timeout": "go_duration",
    "caddy_acme_ca": "ca",
    "caddy_acme_ca_root": "?path",
    "caddy_acme_email": "?email",
    "caddy_http3_bind": "list:ip",
    # haproxy
    "haproxy_packages": "list:package",
    "haproxy_nbthread": "integer",
    "haproxy_inspect_delay": "simple_duration",
    "haproxy_timeout_client_fin": "simple_duration",
    "haproxy_timeout_server_fin": "simple_duration",
    "haproxy_stats_socket": "path",
    "haproxy_prometheus_bind": "?hostport",
    "haproxy_log": "tokens",
    # mtg
    "mtg_version": "release_version",
    "mtg_release_base_url": "url",
    "mtg_checksum": "?digest",
    "mtg_binary": "path",
    "mtg_user": "unix_name",
    "mtg_group": "unix_name",
    "mtg_config_dir": "path",
    "mtg_service_name": "unit_name",
    "mtg_secret_name": "relative_path",
    "mtg_domain": "?hostname",
    "mtg_bind_to": "hostport",
    "mtg_link_server": "?host",
    "mtg_fronting_host": "host",
    "mtg_public_ipv4": "?ip",
    "mtg_public_ipv6": "?ip",
    "mtg_tolerate_time_skewness": "go_duration",
    "mtg_anti_replay_max_size": "size",
    "mtg_blocklist_urls": "list:url",
    "mtg_blocklist_update_each": "go_duration",
    "mtg_allowlist_urls": "list:url",
    "mtg_allowlist_update_each": "go_duration",
    "mtg_doppelganger_urls": "?list:https_url",
    "mtg_doppelganger_raid_each": "go_duration",
    "mtg_stats_bind_to": "hostport",
    "mtg_dns": "?dns",
    "mtg_proxies": "list:proxy_url",
    "mtg_timeout_tcp": "?go_duration",
    "mtg_timeout_http": "?go_duration",
    "mtg_timeout_idle": "?go_duration",
    "mtg_timeout_handshake": "?go_duration",
    "mtg_selftest_host": "host",
    # nginx_stream
    "nginx_stream_packages": "list:package",
    "nginx_stream_preread_timeout": "simple_duration",
    # nginx_web
    "nginx_web_packages": "list:package",
    "nginx_web_domain": "?hostname",
    "nginx_web_site_root": "path",
    "nginx_web_site_title": "?text",
    "nginx_web_reverse_proxy": "?upstream",
    "nginx_web_http_bind": "list:ip",
    "nginx_web_acme_webroot": "path",
    "nginx_web_https_bind": "list:ip",
    "nginx_web_proxy_allow": "list:cidr",
    "nginx_web_ssl_certificate": "path",
    "nginx_web_ssl_certificate_key": "path",
    "nginx_web_ssl_protocols": "list:tls_protocol",
    # packages, release (internal roles: their inputs come from the roles above)
    "packages_names": "list:package",
    "release_name": "unit_name",
    "release_url": "?url",
    "release_archive": "?relative_path",
    "release_checksum": "?release_checksum",
    "release_member": "?relative_path",
    "release_dest": "?path",
    "release_notify": "list:text",
    # site_content
    "site_content_root": "path",
    "site_content_domain": "?hostname",
    "site_content_title": "?text",
    "site_content_group": "unix_name",
    "site_content_seed": "?seed",
    "site_content_variant": "?hostname",
    "site_content_state_dir": "path",
    # sslh
    "sslh_packages": "list:package",
    "sslh_config_file": "path",
    "sslh_user": "unix_name",
    "sslh_transparent_unit": "unit_name",
    "sslh_transparent_packages": "list:package",
    # tuning
    "tuning_sysctl_file": "path",
    "tuning_extra_sysctl": "keys:sysctl_key",
    "tuning_extra_policies": "keys:sysctl_key",
}

# string variables checked whole by the model, not by kind: where
BY_THE_MODEL = {
    "haproxy_topology": "validator.py (the router's topology document)",
    "nginx_stream_topology": "validator.py (the router's topology document)",
    "sslh_topology": "validator.py (the router's topology document)",
    "haproxy_listen_ports": "owned by site.yml and migrate.yml (interface.py)",
    "tuning_capacity": "tuning.py (the declared capacity)",
    "tuning_derived": "owned by site.yml (tuning.py)",
    "tuning_router_kind": "tuning.py (a router kind)",
    "mtg_secret": "topology.py (parse_secret; never echoed)",
}


def value_errors(settings):
    """["TGP954 [var] <why>. Fix: <how>."] for every variable of ``settings`` (name -> value) that is not of its kind."""
    errors = []
    for name in sorted(settings):
        kind = KINDS.get(name)
        if kind is None:
            continue
        empty_ok = kind.startswith("?")
        problem = values.kind_problem(kind.lstrip("?"), settings[name], empty_ok=empty_ok)
        if problem:
            shown = repr(settings[name])
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            errors.append("TGP954 [%s] %s is not %s%s. Fix: %s." % (
                name, shown, problem[0], " (or empty)" if empty_ok else "", problem[1]))
    return errors
