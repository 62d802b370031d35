"""Shared fixtures for integration tests: real iptables in throwaway network namespaces.

Everything runs inside namespaces made by tools/sandbox.py; the machine's own firewall
is never touched.
"""

from __future__ import annotations

import os
import sys

import pytest

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, os.path.abspath(TOOLS))
# harness.py beside this file; pytest runs with --import-mode=importlib (unit and
# integration test files share basenames), which does not put test dirs on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sandbox  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host: starts full namespace hosts (Debian rootfs, sshd); slower"
    )


@pytest.fixture
def netns():
    """A fresh, empty network namespace (lo up), removed afterwards."""
    with sandbox.Netns() as ns:
        yield ns


@pytest.fixture
def lan():
    """A switch namespace with a bridge; add clients with lan.add_client()."""
    with sandbox.Lan() as switch:
        yield switch
