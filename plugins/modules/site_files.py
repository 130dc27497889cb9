#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: site_files
short_description: Install the host's own website, generated from a seed kept on the host
version_added: 1.0.0
description:
  - Generates the host's website (pages, a fingerprinted stylesheet, favicon, robots.txt, sitemap.xml and a 404
    page) from a seed, so that no two hosts of a fleet serve the same site (C(plugins/module_utils/site.py)).
  - The seed is O(seed) when given, else the file C(seed) in O(state_dir), made once from 32 random bytes and kept, so
    a re-run writes the same bytes and changes nothing.
  - Operator content wins. When the document root holds an C(index.html) this module did not write, the root is
    left alone entirely (a directory, a git checkout). A file it wrote and someone changed since is kept, and so is
    every file it did not write. The page earlier versions of the collection installed is replaced.
  - What it wrote is recorded outside the document root (in O(state_dir)), never served.
author:
  - tgproxy.stealth contributors (@tgproxy)
extends_documentation_fragment:
  - tgproxy.stealth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: the diff lists the files written and removed, not their content
  idempotent:
    support: full
options:
  root:
    description: The document root (created when missing).
    type: path
    required: true
  domain:
    description: The site's name (links, sitemap, contact address).
    type: str
    required: true
  title:
    description: The site's title; empty for one drawn from the seed.
    type: str
    default: ""
  seed:
    description:
      - The seed, e.g. from Vault to give a moved host the same site. Empty for the host's own seed file.
      - Two hosts with the same seed serve the same site; the validator warns about that (TGP603).
    type: str
    default: ""
  variant:
    description:
      - Another site from the same seed, e.g. the domain of a further mtg instance, so that each domain of a host
        serves a website of its own. Empty for the seed's own site.
    type: str
    default: ''
  state_dir:
    description: Where the seed and the list of written files are kept (root-only).
    type: path
    default: /var/lib/tgproxy/site
  owner:
    description: Owner of the written files and directories.
    type: str
    default: root
  group:
    description: Group of the written files and directories (the web server's).
    type: str
    default: root
"""

EXAMPLES = r"""
- name: Install the host's own website
  tgproxy.stealth.site_files:
    root: /var/www/site
    domain: proxy.example.com
    group: caddy
"""

RETURN = r"""
site_id:
  description: A fingerprint of the generated site (what the fleet checks compare).
  returned: always
  type: str
  sample: 3f9a1c0b7e6d5a42
files:
  description: The files of the generated site, relative to the root.
  returned: always
  type: list
  elements: str
written:
  description: Files written (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
removed:
  description: Files of an earlier generation removed (unchanged since they were written).
  returned: always
  type: list
  elements: str
kept:
  description: Files left alone because someone else wrote or changed them.
  returned: always
  type: list
  elements: str
operator_site:
  description: The root holds a site this module did not write; nothing in it was touched.
  returned: always
  type: bool
"""

import binascii
import grp
import hashlib
import json
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tgproxy.stealth.plugins.module_utils import site


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _write(path, data, mode, uid, gid):
    directory = os.path.dirname(path)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".tgproxy-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.chown(temp, uid, gid)
        os.rename(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _makedirs(path, uid, gid, mode):
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, mode)
        os.chown(directory, uid, gid)


def _seed(module, state_dir):
    """(seed, created): the inventory's, the host's kept one, or a new one (kept unless in check mode)."""
    if module.params["seed"]:
        return module.params["seed"], False
    path = os.path.join(state_dir, "seed")
    kept = _read(path)
    if kept and kept.strip():
        return kept.decode("ascii", "replace").strip(), False
    seed = binascii.hexlify(os.urandom(32)).decode("ascii")
    if not module.check_mode:
        _makedirs(state_dir, 0, 0, 0o700)
        _write(path, (seed + "\n").encode("ascii"), 0o600, 0, 0)
    return seed, True


def _plan(root, files, manifest):
    """What to write, remove and keep; None when the root holds an operator's site."""
    index = _read(os.path.join(root, "index.html"))
    ours = manifest.get("index.html")
    if index is not None and _sha(index) != ours and site.LEGACY_MARKER.encode("utf-8") not in index:
        return None
    write, keep, remove = [], [], []
    for path in sorted(files):
        current = _read(os.path.join(root, path))
        if current is None:
            write.append(path)
        elif current == files[path]:
            continue
        elif path in manifest and _sha(current) == manifest[path]:
            write.append(path)
        elif path == "index.html":
            write.append(path)  # the legacy page
        else:
            keep.append(path)
    for path in sorted(set(manifest) - set(files)):
        current = _read(os.path.join(root, path))
        if current is not None and _sha(current) == manifest[path]:
            remove.append(path)
    return write, keep, remove


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            domain=dict(type="str", required=True),
            title=dict(type="str", default=""),
            seed=dict(type="str", default="", no_log=True),
            variant=dict(type="str", default=""),
            state_dir=dict(type="path", default="/var/lib/tgproxy/site"),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        uid, gid = pwd.getpwnam(params["owner"]).pw_uid, grp.getgrnam(params["group"]).gr_gid
    except KeyError as exc:
        if not module.check_mode:
            module.fail_json(msg="[owner/group] %s does not exist on the host." % exc)
        # in check mode the web server's user is not created yet: nothing is written anyway
        uid = gid = -1
    root, state_dir = params["root"], params["state_dir"]
    seed, created = _seed(module, state_dir)
    files = site.generate(site.variant_seed(seed, params["variant"]), params["domain"], params["title"] or None)
    manifest_path = os.path.join(state_dir, "manifest-%s.json" % _sha(root.encode("utf-8"))[:12])
    manifest = json.loads((_read(manifest_path) or b"{}").decode("utf-8"))
    result = dict(site_id=site.site_id(files), files=sorted(files), written=[], removed=[], kept=[],
                  operator_site=False, changed=created)
    plan = _plan(root, files, manifest)
    if plan is None:
        result["operator_site"] = True
        module.exit_json(**result)
    write, keep, remove = plan
    result.update(written=write, removed=remove, kept=keep, changed=bool(created or write or remove))
    if module._diff and (write or remove):
        result["diff"] = dict(before="".join("%s\n" % path for path in sorted(set(manifest) & set(write + remove))),
                              after="".join("%s\n" % path for path in write))
    if not module.check_mode and (write or remove):
        for path in write:
            target = os.path.join(root, path)
            _makedirs(os.path.dirname(target), uid, gid, 0o755)
            _write(target, files[path], 0o644, uid, gid)
        for path in remove:
            os.unlink(os.path.join(root, path))
        recorded = dict((path, _sha(files[path])) for path in files if path not in keep)
        _makedirs(state_dir, 0, 0, 0o700)
        _write(manifest_path, json.dumps(recorded, sort_keys=True).encode("utf-8"), 0o600, 0, 0)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
