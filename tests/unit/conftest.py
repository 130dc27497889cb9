"""Make the collection importable as ansible_collections.tgproxy.stealth."""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINK_BASE = os.path.join(ROOT, ".cache", "collections")
link = os.path.join(LINK_BASE, "ansible_collections", "tgproxy", "stealth")
if not os.path.exists(link):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(ROOT, link)
if LINK_BASE not in sys.path:
    sys.path.insert(0, LINK_BASE)
