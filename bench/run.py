#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run every bench/bench_*.py in turn with this interpreter; exit 1 if any of them failed."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    names = (argv if argv is not None else sys.argv[1:]) or None
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    if names:
        scripts = [s for s in scripts if any(n in os.path.basename(s) for n in names)]
    failed = []
    for script in scripts:
        name = os.path.basename(script)
        print("=== %s" % name, flush=True)
        start = time.monotonic()
        rc = subprocess.run([sys.executable, script], check=False).returncode
        status = "ok" if rc == 0 else "FAILED (rc=%d)" % rc
        print("=== %s: %s in %.1f s\n" % (name, status, time.monotonic() - start), flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print("failed: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
