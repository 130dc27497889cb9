# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tgproxy.stealth contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sysctl_set against a /proc/sys stand-in directory (the real kernel is exercised in Molecule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.tgproxy.stealth.plugins.modules import sysctl_set as mod
from module_harness import patch_exits, run_main


@pytest.fixture
def proc(tmp_path):
    root = tmp_path / "proc"
    for key, value in {"net.core.somaxconn": "128", "net.ipv4.tcp_max_syn_backlog": "8192",
                       "net.ipv4.ip_local_port_range": "32768\t60999", "net.ipv4.tcp_keepalive_time": "7200",
                       "fs.file-max": "100000"}.items():
        path = root.joinpath(*key.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


@pytest.fixture
def run(monkeypatch, tmp_path, proc):
    patch_exits(monkeypatch)

    def runner(check=False, diff=False, **args):
        args.setdefault("path", str(tmp_path / "90-tgproxy.conf"))
        args.setdefault("proc_root", str(proc))
        args["_ansible_check_mode"] = check
        args["_ansible_diff"] = diff
        return run_main(mod.main, args)

    return runner


SETTINGS = {"net.core.somaxconn": 4096, "net.ipv4.tcp_max_syn_backlog": 4096,
            "net.ipv4.ip_local_port_range": "10240 65535", "net.ipv4.tcp_keepalive_time": 300}
POLICIES = {"net.ipv4.tcp_keepalive_time": "exact"}


def live(proc, key):
    return " ".join(proc.joinpath(*key.split(".")).read_text().split())


def test_applies_the_set_as_one_file_and_live(run, proc, tmp_path):
    result = run(settings=SETTINGS, policies=POLICIES)
    assert result["changed"] is True and result["not_applied"] == {}
    keys = result["keys"]
    assert keys["net.core.somaxconn"]["before"] == "128" and keys["net.core.somaxconn"]["after"] == "4096"
    assert keys["net.core.somaxconn"]["status"] == "applied"
    # never lowered: the host had a higher SYN backlog
    assert keys["net.ipv4.tcp_max_syn_backlog"]["status"] == "kept_higher"
    assert live(proc, "net.ipv4.tcp_max_syn_backlog") == "8192"
    assert live(proc, "net.ipv4.ip_local_port_range") == "10240 65535"
    assert live(proc, "net.ipv4.tcp_keepalive_time") == "300"
    text = (tmp_path / "90-tgproxy.conf").read_text()
    assert "net.core.somaxconn = 4096\n" in text and "net.ipv4.tcp_max_syn_backlog = 8192\n" in text
    assert oct(os.stat(str(tmp_path / "90-tgproxy.conf")).st_mode & 0o777) == "0o644"
    # a second run changes nothing
    again = run(settings=SETTINGS, policies=POLICIES)
    assert again["changed"] is False
    assert {k: v["status"] for k, v in again["keys"].items()} == {
        "net.core.somaxconn": "unchanged", "net.ipv4.tcp_max_syn_backlog": "kept_higher",
        "net.ipv4.ip_local_port_range": "unchanged", "net.ipv4.tcp_keepalive_time": "unchanged"}


def test_allow_lower_applies_exactly(run, proc):
    result = run(settings={"net.ipv4.tcp_max_syn_backlog": 4096}, allow_lower=True)
    assert result["keys"]["net.ipv4.tcp_max_syn_backlog"]["status"] == "applied"
    assert live(proc, "net.ipv4.tcp_max_syn_backlog") == "4096"


def test_check_mode_and_diff_tell_the_truth_and_touch_nothing(run, proc, tmp_path):
    result = run(check=True, diff=True, settings=SETTINGS, policies=POLICIES)
    assert result["changed"] is True
    assert result["keys"]["net.core.somaxconn"]["after"] == "4096"
    assert live(proc, "net.core.somaxconn") == "128"
    assert not (tmp_path / "90-tgproxy.conf").exists()
    file_diff, live_diff = result["diff"]
    assert file_diff["before"] == "" and "net.core.somaxconn = 4096" in file_diff["after"]
    assert "net.core.somaxconn = 128" in live_diff["before"] and "net.core.somaxconn = 4096" in live_diff["after"]
    run(settings=SETTINGS, policies=POLICIES)
    assert run(check=True, diff=True, settings=SETTINGS, policies=POLICIES)["changed"] is False


def test_unapplied_keys_are_reported_not_hidden(run, proc, monkeypatch):
    real = mod.write_live

    def read_only_fs(proc_root, key, value):
        if key.startswith("fs."):
            return "read-only here: the key is not namespaced for this host (container) or /proc/sys is read-only"
        return real(proc_root, key, value)

    monkeypatch.setattr(mod, "write_live", read_only_fs)
    settings = {"fs.file-max": 200000, "net.core.somaxconn": 4096, "net.ipv4.no_such_key": 1}
    result = run(settings=settings)
    assert set(result["not_applied"]) == {"fs.file-max", "net.ipv4.no_such_key"}
    assert "not namespaced" in result["not_applied"]["fs.file-max"]
    assert "no such key" in result["not_applied"]["net.ipv4.no_such_key"]
    assert result["keys"]["fs.file-max"]["after"] == "100000"
    assert result["keys"]["net.core.somaxconn"]["status"] == "applied"
    failed = run(settings=settings, fail_on_unapplied=True)
    assert failed["failed"] is True and "fs.file-max" in failed["msg"]


def test_write_live_explains_errors(monkeypatch, proc):
    def raiser(code):
        def fake_open(*args, **kwargs):
            raise OSError(code, os.strerror(code))
        return fake_open
    for code, words in ((errno.EROFS, "not namespaced"), (errno.EPERM, "permission denied"),
                        (errno.ENOENT, "no such key"), (errno.EINVAL, "rejected the value")):
        monkeypatch.setattr("builtins.open", raiser(code))
        assert words in mod.write_live(str(proc), "net.core.somaxconn", 1)


@pytest.mark.parametrize("args,words", [
    ({"settings": {"not a key": 1}}, "not sysctl keys"),
    ({"settings": {"net.core.somaxconn": 1}, "policies": {"net.core.rmem_max": "exact"}}, "not sysctl keys"),
    ({"settings": {"net.core.somaxconn": 1}, "policies": {"net.core.somaxconn": "lower"}}, "expected one of"),
    ({"settings": {"net.core.somaxconn": "1 2"}, "policies": {"net.core.somaxconn": "at_least"}}, "one number"),
])
def test_bad_arguments(run, args, words):
    result = run(**args)
    assert result["failed"] is True and words in result["msg"]
