# -*- coding: utf-8 -*-
"""Unit tests for the site_files module: main() on a temporary root, as root (the unit tests run as root)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.tgproxy.stealth.plugins.module_utils import site
from ansible_collections.tgproxy.stealth.plugins.modules import site_files as mod

from module_harness import patch_exits, run_main

DOMAIN = "proxy.example.com"


@pytest.fixture
def run(monkeypatch, tmp_path):
    patch_exits(monkeypatch)
    root, state = tmp_path / "www", tmp_path / "state"

    def _run(**args):
        base = {"root": str(root), "domain": DOMAIN, "state_dir": str(state)}
        base.update(args)
        return run_main(mod.main, base)

    _run.root, _run.state = root, state
    return _run


def tree(root):
    out = {}
    for directory, dummy, names in os.walk(str(root)):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, str(root))] = handle.read()
    return out


def test_first_run_writes_the_site_and_keeps_a_seed_then_nothing_changes(run):
    first = run()
    assert first["changed"] is True and not first["operator_site"]
    seed = (run.state / "seed").read_text().strip()
    assert len(seed) == 64 and oct((run.state / "seed").stat().st_mode & 0o777) == "0o600"
    assert oct(run.state.stat().st_mode & 0o777) == "0o700"
    assert tree(run.root) == site.generate(seed, DOMAIN)
    assert sorted(first["written"]) == sorted(first["files"])
    assert oct((run.root / "index.html").stat().st_mode & 0o777) == "0o644"
    second = run()
    assert second["changed"] is False and second["written"] == [] and second["site_id"] == first["site_id"]


def test_check_mode_writes_nothing_and_says_it_would(run):
    result = run(_ansible_check_mode=True)
    assert result["changed"] is True and result["written"]
    assert not run.root.exists() and not (run.state / "seed").exists()


def test_an_operators_site_is_left_alone(run):
    run.root.mkdir()
    (run.root / "index.html").write_text("<h1>my own site</h1>")
    result = run()
    assert result["operator_site"] is True and result["changed"] is True  # the seed was made
    assert tree(run.root) == {"index.html": b"<h1>my own site</h1>"}
    assert run()["changed"] is False


def test_the_page_of_earlier_versions_is_replaced(run):
    run.root.mkdir()
    (run.root / "index.html").write_text("<p>%s</p>" % site.LEGACY_MARKER)
    result = run()
    assert result["changed"] is True and "index.html" in result["written"]
    assert site.LEGACY_MARKER not in (run.root / "index.html").read_text()


def test_a_file_someone_changed_is_kept_and_the_rest_stays_ours(run):
    run(seed="fixed")
    (run.root / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    result = run(seed="fixed", title="Another title")  # every page changes
    assert "robots.txt" in result["kept"] and "robots.txt" not in result["written"]
    assert (run.root / "robots.txt").read_text() == "User-agent: *\nDisallow: /\n"
    assert "Another title" in (run.root / "index.html").read_text()


def test_an_explicit_seed_gives_that_site_and_a_new_seed_removes_the_old_files(run):
    run(seed="first")
    old = set(tree(run.root))
    result = run(seed="second")
    assert tree(run.root) == site.generate("second", DOMAIN)
    assert set(result["removed"]) == old - set(site.generate("second", DOMAIN))
    assert not (run.state / "seed").exists()


def test_files_of_others_are_never_removed(run):
    run(seed="first")
    (run.root / "notes.txt").write_text("mine")
    run(seed="second")
    assert (run.root / "notes.txt").read_text() == "mine"


def test_the_record_of_written_files_is_outside_the_root(run):
    run()
    manifests = [name for name in os.listdir(str(run.state)) if name.startswith("manifest-")]
    assert len(manifests) == 1
    recorded = json.loads((run.state / manifests[0]).read_text())
    assert set(recorded) == set(tree(run.root))


def test_diff_lists_the_files_not_their_content(run):
    result = run(_ansible_diff=True)
    assert "index.html\n" in result["diff"]["after"] and "<html" not in result["diff"]["after"]


def test_an_unknown_group_is_named(run):
    result = run(group="no-such-group-here")
    assert result["failed"] and result["msg"].startswith("[owner/group]")


def test_check_mode_on_a_fresh_host_tolerates_a_group_not_created_yet(run):
    result = run(group="no-such-group-here", _ansible_check_mode=True)
    assert not result.get("failed") and result["changed"] is True and not run.root.exists()
