# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the action plugins: nofile_check and topology_validate on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
from unittest.mock import MagicMock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.tgproxy.stealth.plugins.action import nofile_check, topology_validate
from ansible_collections.tgproxy.stealth.plugins.module_utils import tuning

KEY = bytes(range(1, 17))
DOMAIN = "proxy.example.com"
SECRET = "ee" + KEY.hex() + DOMAIN.encode("ascii").hex()
GOOD = {"kind": "sni_router", "domain": DOMAIN, "public_ipv4": "203.0.113.10", "mtg": {"secret": SECRET},
        "router": {"kind": "haproxy"}}
LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 %s                   files
Max locked memory         8388608              8388608              bytes
"""


def action(cls, args, module_result=None):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = False
    task.diff = False
    play_context = MagicMock()
    play_context.check_mode = False
    plugin = cls(task, MagicMock(), play_context, loader=None, templar=None, shared_loader_obj=None)
    plugin._execute_module = MagicMock(return_value=module_result)
    return plugin


def limits(hard):
    return {"content": base64.b64encode((LIMITS % hard).encode()).decode(), "encoding": "base64"}


NOFILE_ARGS = {"needed": 41024, "subject": "[tgproxy_router.maxconn] maxconn 20000 needs 41024 open files",
               "consequence": "HAProxy would refuse to load the configuration", "fix": "lower maxconn to {fit} or less"}


@pytest.mark.parametrize("hard", ["41024", "1048576", "unlimited"])
def test_nofile_check_passes_when_the_limit_holds(hard):
    plugin = action(nofile_check.ActionModule, dict(NOFILE_ARGS), limits(hard))
    result = plugin.run(task_vars={})
    assert not result.get("failed"), result
    assert result["changed"] is False and result["needed"] == 41024
    assert result["hard_limit"] == (hard if hard == "unlimited" else int(hard))
    module_args = plugin._execute_module.call_args.kwargs
    assert module_args["module_name"] == "ansible.builtin.slurp"
    assert module_args["module_args"] == {"src": "/proc/1/limits"}


def test_nofile_check_fails_naming_the_variable_the_limit_and_what_fits():
    result = action(nofile_check.ActionModule, dict(NOFILE_ARGS), limits("20000")).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("[tgproxy_router.maxconn] maxconn 20000 needs 41024 open files, but this host's "
                                    "hard open-file limit is 20000: HAProxy would refuse")
    assert "lower maxconn to %d or less" % tuning.connections_for_nofile(20000) in result["msg"]
    assert "DefaultLimitNOFILE" in result["msg"]


def test_nofile_check_passes_the_read_failure_through():
    result = action(nofile_check.ActionModule, dict(NOFILE_ARGS), {"failed": True, "msg": "file not found"}).run(
        task_vars={})
    assert result == {"failed": True, "msg": "file not found"}


@pytest.mark.parametrize("drop", sorted(NOFILE_ARGS))
def test_nofile_check_requires_every_argument(drop):
    args = dict(NOFILE_ARGS)
    del args[drop]
    with pytest.raises(AnsibleActionFail, match=drop):
        action(nofile_check.ActionModule, args).run(task_vars={})


def test_nofile_check_rejects_a_needed_that_is_no_number():
    with pytest.raises(AnsibleActionFail, match="whole number"):
        action(nofile_check.ActionModule, dict(NOFILE_ARGS, needed="lots")).run(task_vars={})


def test_hard_nofile_parses_the_limits_text():
    assert tuning.hard_nofile(LIMITS % "524288") == 524288
    assert tuning.hard_nofile(LIMITS % "unlimited") == "unlimited"
    with pytest.raises(ValueError):
        tuning.hard_nofile("Max cpu time unlimited unlimited seconds\n")


def test_topology_validate_runs_on_the_controller_and_masks_the_secret():
    plugin = action(topology_validate.ActionModule, {"topology": GOOD})
    result = plugin.run(task_vars={})
    assert not result.get("failed"), result
    assert plugin._execute_module.call_count == 0
    assert result["topology"]["router"]["kind"] == "haproxy"
    text = json.dumps(result)
    for form in topology_validate.validator.secret_forms(GOOD):
        assert form not in text


def test_topology_validate_fails_with_every_error_named_by_the_users_variable():
    bad = dict(GOOD, router={"kind": "haproxy", "listen": ["nonsense"]}, domain="Bad Domain")
    result = action(topology_validate.ActionModule, {"topology": bad, "variables": {"domain": "mtg_domain"}}).run(
        task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("The topology has %d error(s); nothing was changed." % len(result["errors"]))
    assert len(result["errors"]) >= 2
    assert "mtg_domain (domain)" in result["msg"]


def test_topology_validate_rejects_unknown_arguments():
    with pytest.raises(AnsibleActionFail):
        action(topology_validate.ActionModule, {"topology": GOOD, "resolve": True}).run(task_vars={})
