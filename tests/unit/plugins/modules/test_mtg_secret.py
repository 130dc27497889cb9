import pytest

from ansible_collections.tgproxy.stealth.plugins.modules.mtg_secret import decide

KEY = bytes(range(1, 17))
GOOD = "ee" + KEY.hex() + b"proxy.example.com".hex()
OTHER = "ee" + KEY.hex() + b"other.example.com".hex()


@pytest.mark.parametrize("stored,supplied,regen,action", [
    (None, None, False, "generate"),
    (GOOD, None, False, "keep"),
    (GOOD, GOOD, False, "keep"),
    (None, GOOD, False, "store"),
    (OTHER, GOOD, False, "store"),
    (OTHER, None, False, "error"),
    (OTHER, None, True, "generate"),
    ("garbage", None, False, "error"),
    ("garbage", None, True, "generate"),
    (None, OTHER, False, "error"),
    (None, "ee12", False, "error"),
])
def test_decide(stored, supplied, regen, action):
    got, secret, error = decide(stored, supplied, "proxy.example.com", regen)
    assert got == action
    if action == "error":
        assert error and (supplied is None or supplied not in error)
    if action in ("keep", "store"):
        assert secret.domain == "proxy.example.com"


def test_kept_secret_for_other_domain_explains_fix():
    error = decide(OTHER, None, "proxy.example.com", False)[2]
    assert "mtg_secret_regenerate=true" in error
