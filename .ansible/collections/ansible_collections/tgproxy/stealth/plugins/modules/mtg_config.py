#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mtg_config
short_description: Write mtg's TOML configuration with the secret kept out of logs and diffs
version_added: "0.1.0"
description:
  - Renders the mtg configuration document built by the topology model (filter
    C(tgproxy.stealth.mtg_config_doc)) as TOML, adds the secret, validates the
    candidate file with mtg itself and only then replaces the running one.
  - The secret is a C(no_log) option. With C(--diff) every line of the configuration stays visible but the
    secrets, the one on disk as well as the new one (a changed secret shows as C(<secret hidden, replaced>) and
    C(<secret hidden, new>)).
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
  path:
    description: Destination file.
    type: path
    required: true
  config:
    description: The configuration document without the secret.
    type: dict
    required: true
  secret:
    description: The mtg secret (hex or base64url). Never logged.
    type: str
    required: true
  validate:
    description:
      - Command run against the candidate file before it replaces I(path); C(%s) is the candidate's path.
      - Skipped in check mode.
    type: str
  header:
    description: Comment placed at the top of the file.
    type: str
    default: "# Managed by Ansible (tgproxy.stealth.mtg). Local changes are overwritten."
  owner:
    description: Owner of the file.
    type: str
  group:
    description: Group of the file.
    type: str
  mode:
    description: Mode of the file.
    type: raw
    default: "0640"
author:
  - tgproxy.stealth contributors (@tgproxy)
"""

EXAMPLES = r"""
- name: Write mtg config
  tgproxy.stealth.mtg_config:
    path: /etc/mtg/config.toml
    config: "{{ mtg_spec | tgproxy.stealth.mtg_config_doc }}"
    secret: "{{ mtg_secret_value }}"
    validate: /usr/local/bin/mtg access -i 127.0.0.1 -I ::1 %s
    owner: root
    group: mtg
    mode: "0640"
"""

RETURN = r"""
path:
  description: The destination.
  returned: always
  type: str
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils.topology import dump_toml


SECRET_LINE = re.compile(r'^(\s*secret\s*=\s*)(["\'])(.*?)\2', re.M)


def masked(text, placeholder):
    """text with every secret it carries replaced by placeholder: the value of each secret line, and any other
    appearance of that value (a diff must never show a secret, the one on disk as little as the new one)."""
    for value in set(match.group(3) for match in SECRET_LINE.finditer(text)):
        if value:
            text = text.replace(value, placeholder)
    return text


def diff_of(before, after):
    """--diff of the configuration: every line visible but the secrets, and whether the secret changes."""
    old = [m.group(3) for m in SECRET_LINE.finditer(before)]
    new = [m.group(3) for m in SECRET_LINE.finditer(after)]
    changed = old != new
    return dict(before=masked(before, "<secret hidden%s>" % (", replaced" if changed and old else "")),
                after=masked(after, "<secret hidden%s>" % (", new" if changed else "")))


def render(config, secret, header):
    doc = dict(config)
    doc["secret"] = secret
    return dump_toml(doc, header=header, first_keys=("secret", "bind-to"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            config=dict(type="dict", required=True),
            secret=dict(type="str", required=True, no_log=True),
            validate=dict(type="str"),
            header=dict(type="str", default="# Managed by Ansible (tgproxy.stealth.mtg). Local changes are overwritten."),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0640"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    content = render(module.params["config"], module.params["secret"], module.params["header"])
    before = ""
    if os.path.exists(path):
        with open(path, "r") as handle:
            before = handle.read()
    changed = before != content
    result = dict(changed=changed, path=path)
    if module._diff:
        result["diff"] = dict(before_header=path, after_header=path, **diff_of(before, content))

    file_args = module.load_file_common_arguments(module.params)
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".mtg-config-", dir=directory)
        try:
            os.chmod(tmp, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
            if module.params["validate"]:
                if "%s" not in module.params["validate"]:
                    module.fail_json(msg="validate must contain %%s: %s" % module.params["validate"])
                rc, out, err = module.run_command(module.params["validate"] % tmp)
                if rc != 0:
                    module.fail_json(msg="mtg rejected the new configuration; the running one was kept: %s"
                                     % (err.strip() or "exit code %d" % rc), rc=rc)
            module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if os.path.exists(path):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    elif module.check_mode:
        result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
