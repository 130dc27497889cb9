import base64
import json

import pytest

from ansible_collections.tgproxy.stealth.plugins.modules import mtg_config as mod
from ansible_collections.tgproxy.stealth.plugins.modules.mtg_config import render
from module_harness import patch_exits, run_main

KEY = bytes(range(1, 17))
GOOD = "ee" + KEY.hex() + b"proxy.example.com".hex()


def test_render_puts_secret_first_and_is_stable():
    config = {"bind-to": "127.0.0.1:3128", "domain-fronting": {"ip": "127.0.0.1", "port": 8443}}
    text = render(config, GOOD, "# header")
    assert text.splitlines()[:3] == ["# header", 'secret = "%s"' % GOOD, 'bind-to = "127.0.0.1:3128"']
    assert render(config, GOOD, "# header") == text


# --diff never shows a secret: neither the new one nor the one on disk, in any of its forms

OLD_KEY = bytes(range(101, 117))
OLD = "ee" + OLD_KEY.hex() + b"old.example.net".hex()
CONFIG = {"bind-to": "127.0.0.1:3128", "concurrency": 8192}


def forms(secret):
    """Every way a secret can be written: hex, base64url (mtg's other form), the key alone."""
    raw = bytes.fromhex(secret)
    return [secret, secret[2:34], base64.urlsafe_b64encode(raw).decode().rstrip("=")]


@pytest.fixture
def run(monkeypatch, tmp_path):
    # the real exit_json masks no_log values (the new secret); patch_exits does not, so the test sees what the
    # module itself puts in its result
    patch_exits(monkeypatch)

    def runner(secret, check=True, diff=True):
        return run_main(mod.main, {"path": str(tmp_path / "config.toml"), "config": CONFIG, "secret": secret,
                                   "_ansible_check_mode": check, "_ansible_diff": diff})
    return runner


@pytest.mark.parametrize("new", [GOOD, OLD], ids=["secret replaced", "secret unchanged"])
def test_diff_shows_no_secret_of_either_side(run, tmp_path, new):
    (tmp_path / "config.toml").write_text(mod.render(dict(CONFIG, concurrency=4096), OLD, "# header") +
                                          "# an operator's note naming %s\n" % OLD)
    result = run(new)
    shown = json.dumps(result)
    for secret in (OLD, GOOD):
        for form in forms(secret):
            assert form not in shown, form
    assert result["changed"] is True
    diff = result["diff"]
    # every other line stays visible
    assert "concurrency = 4096" in diff["before"] and "concurrency = 8192" in diff["after"]
    if new == OLD:
        assert 'secret = "<secret hidden>"' in diff["before"] and 'secret = "<secret hidden>"' in diff["after"]
    else:
        assert 'secret = "<secret hidden, replaced>"' in diff["before"]
        assert 'secret = "<secret hidden, new>"' in diff["after"]


def test_diff_of_a_first_run_hides_the_new_secret(run):
    result = run(GOOD)
    assert GOOD not in json.dumps(result)
    assert result["diff"]["before"] == "" and 'secret = "<secret hidden, new>"' in result["diff"]["after"]
