#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: sysctl_set
short_description: Apply a set of kernel parameters as one drop-in file, live, with a per-key report
version_added: "0.1.0"
description:
  - Writes every key of I(settings) to one file under C(/etc/sysctl.d) in a single atomic replace, then
    writes each value to C(/proc/sys) so it takes effect without a reboot.
  - Never lowers a value the host already has higher (policy C(at_least)) and only ever widens a range
    (policy C(widen)), unless I(allow_lower) is set; such keys are written with the host's value and
    reported as C(kept_higher).
  - Reports, per key, the value before and after and whether it was applied. Keys the kernel does not
    let this host change (for example a global key inside a container whose C(/proc/sys) is read-only,
    or a key this kernel does not have) are listed in C(not_applied) with the reason and a warning,
    instead of failing silently; set I(fail_on_unapplied) to make them an error.
  - M(ansible.posix.sysctl) sets one key per task; this module treats the derived set as one unit
    (one file, one report, one diff), which is what the tuning role needs.
extends_documentation_fragment:
  - tgproxy.stealth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  settings:
    description: Kernel parameters and values, for example C(net.core.somaxconn=4096).
    type: dict
    required: true
  policies:
    description:
      - Per key, how the value meets the host's current one. C(at_least) (the default for a single number),
        C(widen) (the default for a two-number range), C(exact) (the default for anything else).
    type: dict
    default: {}
  allow_lower:
    description: Apply every value exactly, even below what the host has now.
    type: bool
    default: false
  path:
    description: The drop-in file.
    type: path
    default: /etc/sysctl.d/90-tgproxy.conf
  header:
    description: Comment placed at the top of the file.
    type: str
    default: "# Managed by Ansible (tgproxy.stealth.sysctl_set). Local changes are overwritten."
  apply:
    description: Write the values to C(/proc/sys) as well (otherwise they take effect at the next boot).
    type: bool
    default: true
  fail_on_unapplied:
    description: Fail when a key cannot be applied live.
    type: bool
    default: false
  proc_root:
    description: Where the kernel's parameters are mounted.
    type: path
    default: /proc/sys
author:
  - tgproxy.stealth contributors (@tgproxy)
"""

EXAMPLES = r"""
- name: Apply the tuning derived from the declared capacity
  tgproxy.stealth.sysctl_set:
    settings: "{{ (tgproxy_capacity | tgproxy.stealth.tgp_tuning).sysctl }}"
    policies: "{{ (tgproxy_capacity | tgproxy.stealth.tgp_tuning).policies }}"
  register: tuning
"""

RETURN = r"""
keys:
  description: Per key, C(before) (live value), C(desired), C(after) (live value now; in check mode the value
    it would have), C(written) (value in the file) and C(status), one of C(unchanged), C(applied),
    C(kept_higher), C(not_applied) (then C(reason)).
  returned: always
  type: dict
not_applied:
  description: Keys that could not be applied live, with the reason.
  returned: always
  type: dict
path:
  description: The drop-in file.
  returned: always
  type: str
"""

import errno
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils.tuning import POLICIES, merge_value, same_value
from ansible_collections.tgproxy.stealth.plugins.module_utils.values import is_sysctl_key


def proc_path(proc_root, key):
    return os.path.join(proc_root, *key.split("."))


def read_live(proc_root, key):
    try:
        with open(proc_path(proc_root, key), "r") as handle:
            return " ".join(handle.read().split())
    except (IOError, OSError):
        return None


def default_policy(value):
    words = str(value).split()
    if all(word.lstrip("-").isdigit() for word in words):
        if len(words) == 1:
            return "at_least"
        if len(words) == 2:
            return "widen"
    return "exact"


def render(header, written):
    lines = [header, "# Applied by tgproxy.stealth.sysctl_set; values never below what the host had unless allow_lower."]
    lines += ["%s = %s" % (key, written[key]) for key in sorted(written)]
    return "\n".join(lines) + "\n"


def write_live(proc_root, key, value):
    """None when applied, else why not."""
    try:
        with open(proc_path(proc_root, key), "w") as handle:
            handle.write(str(value) + "\n")
        return None
    except (IOError, OSError) as exc:
        if exc.errno == errno.EROFS:
            return "read-only here: the key is not namespaced for this host (container) or /proc/sys is read-only"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied: the key is not namespaced for this host (container) or needs root"
        if exc.errno == errno.ENOENT:
            return "this kernel has no such key"
        if exc.errno == errno.EINVAL:
            return "the kernel rejected the value %r" % (value,)
        return "%s" % exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settings=dict(type="dict", required=True),
            policies=dict(type="dict", default={}),
            allow_lower=dict(type="bool", default=False),
            path=dict(type="path", default="/etc/sysctl.d/90-tgproxy.conf"),
            header=dict(type="str", default="# Managed by Ansible (tgproxy.stealth.sysctl_set). "
                                            "Local changes are overwritten."),
            apply=dict(type="bool", default=True),
            fail_on_unapplied=dict(type="bool", default=False),
            proc_root=dict(type="path", default="/proc/sys"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    settings, proc_root = params["settings"], params["proc_root"]
    bad = [key for key in settings if not is_sysctl_key(key)]
    bad += [key for key in params["policies"] if key not in settings]
    if bad:
        module.fail_json(msg="settings/policies name keys that are not sysctl keys of this set: %s"
                         % ", ".join(sorted(bad)))
    for key, policy in params["policies"].items():
        if policy not in POLICIES:
            module.fail_json(msg="policies.%s is %r; expected one of %s" % (key, policy, ", ".join(POLICIES)))

    keys, written = {}, {}
    for key in sorted(settings):
        desired = " ".join(str(settings[key]).split())
        policy = params["policies"].get(key) or default_policy(desired)
        before = read_live(proc_root, key)
        try:
            value, note = merge_value(before, desired, policy, params["allow_lower"])
        except ValueError as exc:
            module.fail_json(msg="%s: %s" % (key, exc))
        written[key] = value
        entry = dict(before=before, desired=desired, written=value, policy=policy, after=before)
        if before is None:
            entry.update(status="not_applied", reason="this kernel has no such key (or /proc/sys is not mounted)")
        elif same_value(before, value):
            entry["status"] = note or "unchanged"
        else:
            entry.update(status="applied", after=value)
        keys[key] = entry

    content = render(params["header"], written)
    path = params["path"]
    before_file = ""
    if os.path.exists(path):
        with open(path, "r") as handle:
            before_file = handle.read()
    file_changed = before_file != content
    live_changed = False
    if not module.check_mode:
        if file_changed:
            directory = os.path.dirname(path) or "."
            fd, tmp = tempfile.mkstemp(prefix=".tgproxy-sysctl-", dir=directory)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(content)
                os.chmod(tmp, 0o644)
                module.atomic_move(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    for key, entry in keys.items():
        if entry["status"] != "applied":
            continue
        if not params["apply"]:
            entry.update(status="written_only", after=entry["before"])
        elif module.check_mode:
            if not os.access(proc_path(proc_root, key), os.W_OK):
                entry.update(status="not_applied", after=entry["before"],
                             reason="not writable here: the key is not namespaced for this host (container) "
                                    "or /proc/sys is read-only")
        else:
            reason = write_live(proc_root, key, entry["written"])
            now = read_live(proc_root, key)
            if reason is None and not same_value(now, entry["written"]):
                reason = "the kernel kept %r after writing %r" % (now, entry["written"])
            entry["after"] = now
            if reason:
                entry.update(status="not_applied", reason=reason)
            else:
                live_changed = True

    not_applied = dict((key, entry["reason"]) for key, entry in keys.items() if entry["status"] == "not_applied")
    result = dict(changed=file_changed or live_changed or (module.check_mode and any(
        entry["status"] == "applied" for entry in keys.values())), path=path, keys=keys, not_applied=not_applied)
    if module._diff:
        live_before = "".join("%s = %s\n" % (k, keys[k]["before"]) for k in sorted(keys) if keys[k]["before"] is not None)
        live_after = "".join("%s = %s\n" % (k, keys[k]["after"] if keys[k]["status"] != "not_applied"
                                            else keys[k]["before"]) for k in sorted(keys)
                             if keys[k]["before"] is not None)
        result["diff"] = [dict(before_header=path, after_header=path, before=before_file, after=content),
                          dict(before_header="live " + proc_root, after_header="live " + proc_root,
                               before=live_before, after=live_after)]
    for key in sorted(not_applied):
        module.warn("%s = %s was written to %s but not applied live: %s" % (key, written[key], path, not_applied[key]))
    if not_applied and params["fail_on_unapplied"] and not module.check_mode:
        module.fail_json(msg="could not apply %s" % ", ".join(sorted(not_applied)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
