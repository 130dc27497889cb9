# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The open-file-limit preflight of every daemon role (documented in plugins/modules/nofile_check.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.tgproxy.stealth.plugins.module_utils import tuning


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _VALID_ARGS = frozenset(("needed", "subject", "consequence", "fix"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        missing = [name for name in sorted(self._VALID_ARGS) if args.get(name) in (None, "")]
        if missing:
            raise AnsibleActionFail("nofile_check needs %s" % ", ".join(missing))
        try:
            needed = int(args["needed"])
        except (TypeError, ValueError):
            raise AnsibleActionFail("nofile_check: needed must be a whole number, got %r" % (args["needed"],))
        # the limit systemd may grant its units is PID 1's hard limit
        read = self._execute_module(module_name="ansible.builtin.slurp", module_args={"src": "/proc/1/limits"},
                                    task_vars=task_vars)
        if read.get("failed"):
            return read
        limits = base64.b64decode(read["content"]).decode("utf-8", "replace")
        message = tuning.nofile_shortfall(limits, needed, args["subject"], args["consequence"], args["fix"])
        result.update(changed=False, needed=needed, hard_limit=tuning.hard_nofile(limits))
        if message:
            result.update(failed=True, msg=message)
        return result
