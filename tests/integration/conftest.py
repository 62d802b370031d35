"""Shared fixtures for integration tests: real iptables in throwaway network namespaces.

Everything runs inside namespaces made by tools/sandbox_net.py; the machine's own firewall
is never touched. The helpers the tests import (sandbox_*, ansible_runs, module_timer,
site_sandbox, fleet) live in tools/, which this file puts on sys.path.
"""

from __future__ import annotations

import os
import sys

import pytest

# pytest runs with --import-mode=importlib (unit and integration test files share
# basenames), which puts neither test dirs nor tools/ on sys.path.
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, os.path.abspath(TOOLS))

import sandbox_net  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host: starts full namespace hosts (Debian rootfs, sshd); slower"
    )


@pytest.fixture
def netns():
    """A fresh, empty network namespace (lo up), removed afterwards."""
    with sandbox_net.Netns() as ns:
        yield ns


@pytest.fixture
def lan():
    """A switch namespace with a bridge; add clients with lan.add_client()."""
    with sandbox_net.Lan() as switch:
        yield switch
