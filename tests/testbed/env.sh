# Source after tests/testbed/setup.sh: activates the test venv and makes the
# collection importable as tgproxy.stealth from this checkout.
# shellcheck source=tests/testbed/config.sh
source "$(dirname "${BASH_SOURCE[0]}")/config.sh"
# shellcheck disable=SC1091
source "$TGP_VENV/bin/activate"
TGP_COLLECTIONS=$TGP_ROOT/.cache/collections
mkdir -p "$TGP_COLLECTIONS/ansible_collections/tgproxy"
ln -sfn "$TGP_ROOT" "$TGP_COLLECTIONS/ansible_collections/tgproxy/stealth"
export ANSIBLE_COLLECTIONS_PATH=$TGP_COLLECTIONS
export PYTHONPATH=$TGP_COLLECTIONS${PYTHONPATH:+:$PYTHONPATH}
export TGP_MTG_VERSION TGP_MTG_UPGRADE_VERSION TGP_MIRROR_URL TGP_ROOT TGP_CACHE TGP_APT_HOST TGP_APT_IP
export TGP_PROMTOOL=$TGP_CACHE/tools/promtool
export ANSIBLE_LOCAL_TEMP=$TGP_ROOT/.cache/ansible-tmp
