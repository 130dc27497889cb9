from ansible_collections.tgproxy.stealth.plugins.modules.mtg_config import render

KEY = bytes(range(1, 17))
GOOD = "ee" + KEY.hex() + b"proxy.example.com".hex()


def test_render_puts_secret_first_and_is_stable():
    config = {"bind-to": "127.0.0.1:3128", "domain-fronting": {"ip": "127.0.0.1", "port": 8443}}
    text = render(config, GOOD, "# header")
    assert text.splitlines()[:3] == ["# header", 'secret = "%s"' % GOOD, 'bind-to = "127.0.0.1:3128"']
    assert render(config, GOOD, "# header") == text
