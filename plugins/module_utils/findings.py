# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one finding type: a problem with the inputs, with a stable code, the variables involved, what breaks and
the fix.

Part of the collection's topology model. The validator's checks (validator.py, codes TGP0xx-TGP8xx) and the
roles' input checks (topology.py's preflights and variables.py's kinds, TGP95x) report with it; every code, with
its title, what breaks and the fix, is in the one catalogue ``validator.CHECKS`` and the README's table.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

ERROR = "error"
WARNING = "warning"


class Finding(ValueError):
    """One problem: code, severity, variables involved (the first is ``var``), message, what breaks, fix."""

    def __init__(self, code, variables, msg, breaks="", fix="", severity=ERROR):
        self.code = code
        self.severity = severity
        self.vars = [variables] if isinstance(variables, str) else list(variables)
        self.msg = msg
        self.breaks = breaks
        self.fix = fix
        super(Finding, self).__init__("%s [%s]: %s Fix: %s" % (code, ", ".join(self.vars), msg, fix))

    @property
    def var(self):
        return self.vars[0] if self.vars else ""

    def as_dict(self):
        return {"code": self.code, "severity": self.severity, "vars": list(self.vars), "var": self.var,
                "msg": self.msg, "breaks": self.breaks, "fix": self.fix}

    def __str__(self):
        return "%s %s [%s]: %s Breaks: %s Fix: %s" % (self.code, self.severity, ", ".join(self.vars), self.msg,
                                                      self.breaks, self.fix)

    def __repr__(self):
        return "Finding(%s, %r)" % (self.code, self.vars)


# The roles' own input checks, in the one catalogue (validator.CHECKS adds them): title, what breaks, fix.
ROLE_CHECKS = {
    "TGP950": (ERROR, "A release or platform the role cannot install.",
               "The role would download something it cannot verify, or nothing at all.",
               "Use a supported version and architecture, or pin the checksum you reviewed."),
    "TGP951": (ERROR, "An mtg role input mtg would refuse or misread.",
               "mtg would not start, or would run with another setting than the inventory says.",
               "Correct the variable named (its message says how)."),
    "TGP952": (ERROR, "A web server role input (Caddy, nginx) it would refuse or misread.",
               "The web server would not start or would serve another site than the inventory says.",
               "Correct the variable named (its message says how)."),
    "TGP953": (ERROR, "An acme.sh role input it would refuse or misread.",
               "No certificate, or one for other names or from another CA than the inventory says.",
               "Correct the variable named (its message says how)."),
    "TGP954": (ERROR, "A string that is not of its kind (hostname, path, URL, duration, ...).",
               "It would reach a configuration file where a newline, quote, ; or brace ends the value and adds "
               "directives of its own, or the daemon refuses it.",
               "Write the value as its kind wants it (the message says how; kinds in module_utils/values.py)."),
}
