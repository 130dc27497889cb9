# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the topology validator (docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.tgproxy.stealth.plugins.module_utils import (
    fleet, interface, migration, platforms, topology, tuning, validator, variables)


def tgp_validate(topology):
    """Every violation of a host's topology (errors and warnings) as a list of dicts."""
    return [finding.as_dict() for finding in validator.validate(topology)]


def tgp_topology_errors(topology):
    """Only the violations of severity error, as a list of dicts (empty = deployable)."""
    return [finding.as_dict() for finding in validator.errors(validator.validate(topology))]


def tgp_normalise(topology):
    """The topology document with every default of the model filled in."""
    return validator.normalise(topology)


def tgp_hostport(address):
    """{host, port} of a host:port or [v6]:port address (host without brackets)."""
    host, port = topology.split_hostport(address)
    return {"host": host, "port": port}


def tgp_seconds(duration):
    """Seconds of a duration as the topology model writes them (1h, 90m, 3600s, 500ms)."""
    try:
        return validator.duration_seconds(duration)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def tgp_tuning(capacity, cpus=1, router_kind=None, backend_loopback=True, prefix="tgproxy_capacity"):
    """Daemon limits and sysctls derived from the declared capacity (see module_utils/tuning.py)."""
    try:
        return tuning.derive(capacity, cpus=cpus, router_kind=router_kind, backend_loopback=backend_loopback,
                             prefix=prefix)
    except tuning.CapacityError as exc:
        raise AnsibleFilterError("Bad capacity: " + "; ".join("[%s] %s" % item for item in exc.problems))


def tgp_interface_errors(derived, set_values, derived_values, names, owned=None, playbook_values=None,
                         playbook="site.yml"):
    """The operator-interface errors of a host: derived variables set to another value, variables site.yml
    owns, unknown variables, and playbook variables (tgproxy_*) that break their spec."""
    return (interface.derived_conflicts(dict(derived or {}), dict(set_values or {}), dict(derived_values or {}),
                                        playbook)
            + interface.owned_messages(dict(owned or {}), list(set_values or {}))
            + interface.unknown_messages(list(names or []))
            + interface.spec_errors(dict(playbook_values or {})))


def tgp_shared_site(hostvars, play_hosts, me, fact="__tgproxy_site_key"):
    """The other hosts of the play whose website key (a hash of the site's seed) is this host's."""
    mine = (hostvars[me].get(fact) if me in hostvars else None) or ""
    if not mine:
        return []
    return sorted(host for host in play_hosts
                  if host != me and host in hostvars and (hostvars[host].get(fact) or "") == mine)


def tgp_shared_traits(hostvars, play_hosts, me, fact="__doctor_traits"):
    """Messages for each identifying public trait this host shares with other hosts of the run (the doctor)."""
    traits = {}
    for host in play_hosts:
        result = hostvars[host].get(fact) if host in hostvars else None
        traits[host] = (result or {}).get("traits") or {}
    return fleet.shared_messages(traits, me)


def tgp_platform(facts):
    """What the model knows of the host's platform, from its Ansible facts."""
    facts = facts or {}
    found = platforms.find(facts.get("distribution"), facts.get("distribution_version"))
    if found is None:
        name = "%s %s" % (facts.get("distribution"), facts.get("distribution_version"))
        return {"known": False, "tested": False, "name": name, "haproxy": None, "nginx": None,
                "acme_sh_package": False}
    return {"known": True, "tested": bool(found.tested),
            "name": "%s %s (%s)" % (found.distribution, found.version, found.codename),
            "haproxy": found.haproxy, "nginx": found.nginx, "acme_sh_package": found.acme_sh_package}


def tgp_nofile(connections, inverse=False):
    """Open files a daemon needs for ``connections`` (two sockets each), or with inverse=True the
    connections a number of open files holds."""
    try:
        return tuning.connections_for_nofile(connections) if inverse else tuning.nofile_for(int(connections))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("tgp_nofile needs a number: %s" % exc)


def tgp_nginx_workers(maxconn, cpus=1):
    """worker_processes, worker_connections and worker_rlimit_nofile for maxconn routed sessions."""
    try:
        return tuning.nginx_workers(maxconn, cpus)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("tgp_nginx_workers needs a number of sessions and CPUs: %s" % exc)


def tgp_stage_binds(binds, ports=None):
    """Listeners of a migration stage: binds on a mapped port move to the given port(s)."""
    try:
        return migration.stage_binds(binds, ports)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("tgp_stage_binds: %s (ports maps a port to one port or a list, "
                                 "e.g. {443: [10443]})" % exc)


def tgp_value_errors(names, settings):
    """The variables among ``names`` (values ``settings``, in order) that are not of their kind
    (module_utils/variables.py)."""
    return variables.value_errors(dict(zip(list(names or []), list(settings or []))))


def tgp_role_defaults(dummy=None):
    """The roles' own defaults (their defaults/main.yml, literal values only): what a playbook falls back to for a
    role variable it reads before the role runs, so no playbook keeps a copy of a role default."""
    return interface.role_defaults()


class FilterModule(object):
    def filters(self):
        return {
            "tgp_normalise": tgp_normalise,
            "tgp_hostport": tgp_hostport,
            "tgp_seconds": tgp_seconds,
            "tgp_validate": tgp_validate,
            "tgp_topology_errors": tgp_topology_errors,
            "tgp_tuning": tgp_tuning,
            "tgp_nginx_workers": tgp_nginx_workers,
            "tgp_nofile": tgp_nofile,
            "tgp_platform": tgp_platform,
            "tgp_interface_errors": tgp_interface_errors,
            "tgp_shared_site": tgp_shared_site,
            "tgp_shared_traits": tgp_shared_traits,
            "tgp_stage_binds": tgp_stage_binds,
            "tgp_value_errors": tgp_value_errors,
            "tgp_role_defaults": tgp_role_defaults,
        }
