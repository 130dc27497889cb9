#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) tgproxy.stealth contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nofile_check
short_description: Require a host open-file limit that holds a daemon's connections
version_added: 1.0.0
description:
  - Reads the hard open-file limit of PID 1 (C(/proc/1/limits)), the most
    systemd may grant a unit's C(LimitNOFILE), and fails when it is below
    O(needed).
  - systemd silently clamps C(LimitNOFILE) to that limit, so a daemon sized
    above it starts and then fails accepts; this check names the variable,
    what the daemon would do, and what the limit holds.
  - The preflight of the C(haproxy), C(nginx_stream) and C(mtg) roles; one
    remote read, nothing changes on the host.
  - An action plugin does this, so the read runs on the host and the verdict on the controller.
author:
  - tgproxy.stealth contributors (@tgproxy)
extends_documentation_fragment:
  - tgproxy.stealth.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  needed:
    description:
      - Open files the daemon needs.
    type: int
    required: true
  subject:
    description:
      - The start of the message, naming the variable and what it needs,
        e.g. C([mtg_concurrency] concurrency 8192 needs 17408 open files).
    type: str
    required: true
  consequence:
    description:
      - What the daemon would do with too few open files.
    type: str
    required: true
  fix:
    description:
      - What to lower. C({fit}) is replaced with the connections the host's
        limit holds (two sockets each).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Require an open-file limit that holds mtg's concurrency
  tgproxy.stealth.nofile_check:
    needed: "{{ mtg_concurrency | tgproxy.stealth.tgp_nofile }}"
    subject: "[mtg_concurrency] concurrency {{ mtg_concurrency }} needs {{ mtg_concurrency | tgproxy.stealth.tgp_nofile }} open files"
    consequence: mtg would start and then fail accepts (EMFILE)
    fix: lower mtg_concurrency to {fit} or less
"""

RETURN = r"""
needed:
  description: The open files asked for.
  returned: success
  type: int
  sample: 17408
hard_limit:
  description: The host's hard open-file limit (PID 1), or C(unlimited).
  returned: success
  type: raw
  sample: 1048576
"""
