#!/usr/bin/env bash
# Prepare this machine for developing and testing ironwall.iptables.
#
# Idempotent and quick when everything is already in place, so every make target
# can depend on it. Needs root (apt, and later network namespaces). It never starts
# the machine's own sshd and never runs iptables in the machine's own network
# namespace: test hosts live in throwaway namespaces made by tools/sandbox_net.py and sandbox_hosts.py.
#
#   1. Debian packages for the sandbox hosts, Molecule's podman driver and the tests.
#   2. A virtualenv at .venv with the pinned tools from requirements.txt.
#   3. The checkout importable by Ansible as ironwall.iptables
#      (.cache/collections/ansible_collections/ironwall/iptables -> checkout).
#   4. An offline stand-in for the pip bootstrap script ansible-test would download
#      (DESIGN.md section 6), so `ansible-test sanity --venv` needs only PyPI.
#
# Environment: PYTHON (interpreter for .venv, default python3.11 then python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VENV="$ROOT/.venv"
CACHE="$ROOT/.cache"
REQUIREMENTS="$ROOT/requirements.txt"

APT_PACKAGES=(
    # sandbox hosts (tools/sandbox_net.py, sandbox_hosts.py): namespaces, netfilter, real packets, ssh
    iptables ipset iproute2 conntrack netcat-openbsd openssh-client openssh-server procps
    # the hosts' read-only Debian rootfs
    mmdebstrap
    # Molecule podman scenario (runc: crun rejects this VM's cgroups; catatonit: --init)
    podman runc uidmap catatonit
    # the tool chain itself
    make git ca-certificates python3 python3-venv
    # ansible-test sanity's shellcheck test (scripts/, .ci/run)
    shellcheck
)

log() { printf '==> setup: %s\n' "$*"; }
# pip, minus this machine's notes about index directories it does not have.
pip_quiet() {
    "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, and the tests use network namespaces)"

# --- 1. Debian packages -------------------------------------------------------------
apt_missing() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -qx 'install ok installed' \
            || printf '%s\n' "$pkg"
    done
}

missing=$(apt_missing)
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    log "installing Debian packages:" $missing
    export DEBIAN_FRONTEND=noninteractive
    # Keep package scripts from starting services (the machine's own sshd must stay off).
    policy_rc_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_rc_added=1
    fi
    apt-get update -q </dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q $missing </dev/null
    if [ -n "$policy_rc_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
    missing=$(apt_missing)
    [ -z "$missing" ] || die "Debian packages still missing: $missing"
else
    log "Debian packages present"
fi

# --- 2. virtualenv with the pinned tools --------------------------------------------
pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys, venv; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import ansible' 2>/dev/null \
    && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "virtualenv .venv up to date"
else
    python=$(pick_python) || die "no Python 3.11-3.13 with the venv module found (ansible-core 2.19 controller)"
    if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf "$VENV"  # broken, e.g. its interpreter went away
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating .venv with $python ($("$python" --version 2>&1))"
        "$python" -m venv "$VENV"
    fi
    log "installing pinned tools from requirements.txt"
    pip_quiet install --quiet --upgrade pip
    pip_quiet install --quiet -r "$REQUIREMENTS"
    pip_quiet check
    printf '%s\n' "$want" > "$stamp"
fi

# --- 3. the checkout as the collection ironwall.iptables ------------------------------
collection_link="$CACHE/collections/ansible_collections/ironwall/iptables"
mkdir -p "$(dirname "$collection_link")"
if [ "$(readlink "$collection_link" 2>/dev/null)" != "$ROOT" ]; then
    ln -sfn "$ROOT" "$collection_link"
    log "linked $collection_link -> $ROOT"
fi

# --- 4. offline pip bootstrap for ansible-test ----------------------------------------
# ansible-test (ansible_test/_util/target/setup/requirements.py) bootstraps pip into each
# sanity venv with a get-pip script it caches as ~/.ansible/test/cache/get_pip_<ver>.py,
# <ver> being get_venv_packages()['pip'] with dots as underscores. Ask the installed
# ansible-test for the version it wants for each Python it supports, so a new pin of
# ansible-core cannot silently bring back the download.
pip_versions=$("$VENV/bin/python" - <<'EOF'
import types
from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS
versions = {get_venv_packages(types.SimpleNamespace(version=v))["pip"] for v in SUPPORTED_PYTHON_VERSIONS}
print("\n".join(sorted(versions)))
EOF
)
[ -n "$pip_versions" ] || die "could not read the pip version ansible-test bootstraps"
pip_cache="$HOME/.ansible/test/cache"
mkdir -p "$pip_cache"
for version in $pip_versions; do
    target="$pip_cache/get_pip_${version//./_}.py"
    if ! cmp -s "$ROOT/scripts/get_pip_standin.py" "$target"; then
        install -m 0644 "$ROOT/scripts/get_pip_standin.py" "$target"
        log "installed offline pip bootstrap $target"
    fi
done

# Lets make skip this script until requirements.txt or the setup scripts change.
touch "$CACHE/setup.stamp"
log "done"
