"""docs/variables.md and docs/plugins.md are generated from the specs (tests/gendocs.py) and kept current."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import gendocs  # noqa: E402  (tests/gendocs.py)


def test_generated_docs_are_current():
    assert gendocs.stale() == [], "run: python tests/gendocs.py"


def test_every_role_variable_and_plugin_is_documented():
    variables, plugins = gendocs.variables_md(), gendocs.plugins_md()
    for role in sorted(os.listdir(os.path.join(gendocs.ROOT, "roles"))):
        assert "## `tgproxy.stealth.%s`" % role in variables
    assert "| `sslh_transparent_route_table` | int | `100` |" in variables
    for name in os.listdir(os.path.join(gendocs.ROOT, "plugins", "modules")):
        assert "### `tgproxy.stealth.%s`" % name[:-3] in plugins
    assert "| `tgproxy.stealth.tgp_seconds` |" in plugins
