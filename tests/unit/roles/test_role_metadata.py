"""Role metadata stays true: argument specs document exactly the defaults."""

import glob
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")))


def test_there_are_roles():
    assert "mtg" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_keys_equal_defaults(role):
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"))) or {}
    spec = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")))
    options = spec["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults)
    for name, option in options.items():
        assert option.get("description"), name
        if "default" in option:
            assert option["default"] == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"))) or {}
    assert all(name.startswith(role + "_") for name in defaults)
