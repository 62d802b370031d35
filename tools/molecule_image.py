#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the podman image of the Molecule scenarios from the sandbox hosts' Debian rootfs.

The rootfs is the one tools/sandbox_hosts.py builds with mmdebstrap (python3, iptables, ipset,
ifupdown, iproute2, netcat-openbsd, openssh-server, procps, sudo) and caches under
tools/cache/rootfs. It is imported once as ``localhost/ironwall-molecule:latest``
(DESIGN.md section 6: ``tar -C ROOTFS -c . | podman import``); a label remembers which
rootfs build it came from, so a rebuilt rootfs is imported again. Nothing is pulled from
a registry. Molecule's ``dependency`` step runs this script.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from ansible_runs import ROOT
from sandbox_hosts import ROOTFS_STAMP, ensure_rootfs

IMAGE = "localhost/ironwall-molecule:latest"
LABEL = "org.ironwall.rootfs"


def rootfs_id():
    """Identity of the cached rootfs build: its stamp's content and modification time."""
    with open(ROOTFS_STAMP, "rb") as fh:
        stamp = fh.read()
    mtime = str(os.stat(ROOTFS_STAMP).st_mtime_ns).encode()
    return hashlib.sha256(stamp + b"\0" + mtime).hexdigest()[:16]


def current_label(env):
    proc = subprocess.run(["podman", "image", "inspect", "--format",
                           "{{ index .Labels \"%s\" }}" % LABEL, IMAGE],
                          capture_output=True, text=True, env=env, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def main():
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", os.path.join(ROOT, "scripts", "containers.conf"))
    rootfs = ensure_rootfs()
    want = rootfs_id()
    if current_label(env) == want:
        print("molecule image %s is up to date (rootfs %s)" % (IMAGE, want))
        return 0
    print("importing %s from %s" % (IMAGE, rootfs), flush=True)
    tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
    try:
        imp = subprocess.run(
            ["podman", "import",
             "--change", 'CMD ["sleep", "infinity"]',
             "--change", "LABEL %s=%s" % (LABEL, want),
             "-", IMAGE],
            stdin=tar.stdout, capture_output=True, text=True, env=env, check=False)
    finally:
        tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or imp.returncode != 0:
        sys.stderr.write("podman import failed (tar rc=%d, podman rc=%d): %s\n"
                         % (tar_rc, imp.returncode, imp.stderr.strip()))
        return 1
    print("imported %s (rootfs %s)" % (IMAGE, want))
    return 0


if __name__ == "__main__":
    sys.exit(main())
