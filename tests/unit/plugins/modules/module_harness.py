"""Running a module's main() in-process: shared by the module unit tests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


@contextlib.contextmanager
def module_args(args):
    try:  # ansible-core >= 2.19
        from ansible.module_utils.testing import patch_module_args
    except ImportError:
        patch_module_args = None
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    old = basic._ANSIBLE_ARGS  # older ansible-core
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = old


def patch_exits(monkeypatch):
    """exit_json/fail_json raise ExitJson/FailJson with the result as the module built it (the real ones also
    mask no_log values: a test of what the module itself returns must not rely on that)."""
    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        raise FailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run_main(main, args):
    """Run a module's main() with args (patch_exits first); its result."""
    with module_args(args):
        try:
            main()
        except (ExitJson, FailJson) as exc:
            return exc.args[0]
    raise AssertionError("module did not exit")
