# -*- coding: utf-8 -*-
# Copyright: ironwall.iptables contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an execution environment built with ansible-builder gets from the collection, offline.

The release tarball is built and installed into a temporary collections path; then
``ansible-builder introspect --sanitize`` (what the builder runs inside the image) must list
exactly what meta/execution-environment.yml declares (meta/ee-requirements.txt and
meta/ee-bindep.txt), and ``ansible-builder create`` must write the build context of the
example definition extensions/ee/execution-environment.yml. Neither needs a registry or
the network; the image build itself is not run. No development tool of the repository's
requirements.txt may appear in either.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_runs import ROOT, ansible_bin, checkout_env

EE_DIR = os.path.join(ROOT, "extensions", "ee")


def _tool(name):
    return ansible_bin(name)


def _run(argv, collections=None):
    """Run argv; with ``collections``, that path is the only collections path (the checkout's
    link would make ansible-galaxy report the collection as installed already)."""
    env = checkout_env(ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 0, "%s failed (rc=%d)\n%s\n%s" % (argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _requirement_names(path):
    """Distribution names of a pip requirements file (comments and options left out)."""
    names = []
    with open(path) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.append(re.split(r"[\[<>=!~; ]", line, 1)[0].lower())
    return names


# ansible-core belongs in an image; "ansible" (the community package) is checked as a pin only,
# the word itself is in every path of the build context.
PINS = _requirement_names(os.path.join(ROOT, "requirements.txt"))
DEV_TOOLS = [n for n in PINS if n not in ("ansible-core", "ansible")]


def _declared(name):
    """Non-comment lines of a file under meta/, as introspect reads them."""
    with open(os.path.join(ROOT, "meta", name)) as fh:
        return [line.strip() for line in fh if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(tarball, collections path with the tarball installed)."""
    work = tmp_path_factory.mktemp("ee")
    _run([_tool("ansible-galaxy"), "collection", "build", "--output-path", str(work / "dist"), ROOT])
    tarballs = [f for f in os.listdir(str(work / "dist")) if f.endswith(".tar.gz")]
    assert len(tarballs) == 1, tarballs
    tarball = str(work / "dist" / tarballs[0])
    cols = str(work / "collections")
    _run([_tool("ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", cols, tarball], collections=cols)
    assert os.path.isfile(os.path.join(cols, "ansible_collections", "ironwall", "iptables", "meta",
                                       "execution-environment.yml"))
    return tarball, cols


def test_dev_tools_are_known():
    """The list this test checks against is real: the root requirements pin the development tools."""
    assert {"molecule", "pytest", "ansible-lint", "ansible-builder"} <= set(DEV_TOOLS)


def test_metadata_points_at_the_collections_own_files():
    with open(os.path.join(ROOT, "meta", "execution-environment.yml")) as fh:
        meta = yaml.safe_load(fh)
    assert meta["dependencies"] == {"python": "meta/ee-requirements.txt", "system": "meta/ee-bindep.txt"}
    assert _declared("ee-requirements.txt") == []


def strip(entries):
    """Introspect's entries without their '# from collection ...' comment."""
    return [e.split("#", 1)[0].strip() for e in entries or []]


def test_introspect_lists_exactly_what_the_collection_declares(built):
    _tarball, cols = built
    proc = _run([_tool("ansible-builder"), "introspect", "--sanitize", cols], collections=cols)
    data = yaml.safe_load(proc.stdout)
    assert strip(data["python"]) == _declared("ee-requirements.txt") == []
    assert strip(data["system"]) == _declared("ee-bindep.txt")
    assert all("from collection ironwall.iptables" in e for e in data["system"]), data["system"]
    text = proc.stdout.lower()
    assert not re.search(r"(^|[^a-z0-9_-])ansible *[=<>~]", text), proc.stdout
    assert not [t for t in DEV_TOOLS if re.search(r"(^|[^a-z0-9_-])%s([^a-z0-9_-]|$)" % re.escape(t), text)], \
        proc.stdout


def test_create_writes_the_build_context_of_the_example(built, tmp_path):
    tarball, _cols = built
    definition = tmp_path / "ee"
    shutil.copytree(EE_DIR, str(definition))
    shutil.copy(tarball, str(definition / "ironwall-iptables.tar.gz"))
    context = tmp_path / "context"
    _run([_tool("ansible-builder"), "create", "-f", str(definition / "execution-environment.yml"),
          "-c", str(context)])
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile
    assert re.search(r"ansible-core>=2\.19,<2\.20", containerfile), containerfile
    with open(str(context / "_build" / "requirements.yml")) as fh:
        galaxy = yaml.safe_load(fh)
    assert galaxy["collections"] == [{"name": "./ironwall-iptables.tar.gz", "type": "file"}]
    assert (context / "_build" / "ironwall-iptables.tar.gz").read_bytes() == open(tarball, "rb").read()
    # No user Python requirements: the only pip packages are ansible-core and ansible-runner.
    assert not (context / "_build" / "requirements.txt").exists()
    # What the definition put into the context (the builder's own scripts under _build/scripts
    # are the same for every image and name tools in their help texts).
    everything = "\n".join(p.read_text(errors="replace") for p in context.rglob("*")
                           if p.is_file() and not p.name.endswith(".tar.gz")
                           and "scripts" not in p.relative_to(context).parts).lower()
    assert "ansible" in PINS and not re.search(r"(^|[^a-z0-9_-])ansible *[=<>~]", everything)
    for tool in DEV_TOOLS:
        assert not re.search(r"(^|[^a-z0-9_-])%s([^a-z0-9_-]|$)" % re.escape(tool), everything), tool


def test_builder_runs_from_the_pinned_tools():
    """The tests use the ansible-builder requirements.txt pins, not one found elsewhere."""
    path = _tool("ansible-builder")
    assert os.path.dirname(path) == os.path.dirname(sys.executable), path
