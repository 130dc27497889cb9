# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""topology_validate on the controller, in process (documented in plugins/modules/topology_validate.py).

The validator needs nothing from the host, so there is no round trip; the
result is masked of every form of the secret, as the module's would be.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

from ansible_collections.tgproxy.stealth.plugins.module_utils import validator


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=validator.CHECK_DOCUMENT_SPEC)
        findings, out = validator.check_document(args["topology"], args["resolve_dns"], variables=args["variables"])
        failures = validator.errors(findings)
        if failures:
            out.update(failed=True, msg=validator.error_message(failures))
        notes = [validator.finding_text(f) for f in validator.warnings(findings)]
        if notes:
            out["warnings"] = notes
        result.update(remove_values(out, set(validator.secret_forms(args["topology"]))))
        return result
