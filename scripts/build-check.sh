#!/usr/bin/env bash
# `make build`: build the collection tarball the way a release would, install it into a
# temporary collections path (offline: the collection has no dependencies), check the
# tarball holds no development leftovers, and render every module's documentation with
# ansible-doc from that installed copy, so a doc error or a file missing from the
# tarball shows up before a release does.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

work=$(mktemp -d "${TMPDIR:-/tmp}/ironwall-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "==> ansible-galaxy collection build"
ansible-galaxy collection build --output-path "$work/dist" "$ROOT"
tarball=$(ls "$work"/dist/ironwall-iptables-*.tar.gz)

echo "==> checking tarball contents"
leftovers=$(tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.cache|\.git|\.ansible|\.hypothesis|\.pytest_cache|__pycache__|tests/output|tools/cache)(/|$)|\.pyc$' || true)
if [ -n "$leftovers" ]; then
    echo "build: the tarball contains development leftovers (add them to build_ignore in galaxy.yml):" >&2
    printf '%s\n' "$leftovers" | head -20 >&2
    exit 1
fi

# Only the installed copy may be visible: not the checkout (.cache/collections) and not
# the collections bundled in the ansible package.
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false

echo "==> ansible-galaxy collection install $(basename "$tarball")"
ansible-galaxy collection install --offline --no-deps -p "$work/collections" "$tarball"

modules=()
for path in plugins/modules/*.py; do
    [ -e "$path" ] || continue
    name=$(basename "$path" .py)
    case "$name" in __init__|_*) continue ;; esac
    modules+=("ironwall.iptables.$name")
done

if [ "${#modules[@]}" -eq 0 ]; then
    echo "build: no modules in plugins/modules yet; tarball built and installed"
    exit 0
fi

status=0
for module in "${modules[@]}"; do
    if ! out=$(ansible-doc -t module "$module" 2>&1); then
        echo "ansible-doc $module: FAILED" >&2
        printf '%s\n' "$out" >&2
        status=1
    elif grep -qE '^\[(ERROR|WARNING)\]' <<<"$out"; then
        echo "ansible-doc $module: rendered with errors or warnings" >&2
        grep -E '^\[(ERROR|WARNING)\]' <<<"$out" >&2
        status=1
    else
        echo "ansible-doc $module: ok ($(wc -l <<<"$out") lines)"
    fi
done

# Every module must also be listed from the installed copy (catches a broken docs block
# that ansible-doc <name> alone might tolerate, and modules missing from the tarball).
listed=$(ansible-doc -t module -l ironwall.iptables 2>&1 || true)
for module in "${modules[@]}"; do
    if ! grep -q "^$module " <<<"$listed"; then
        echo "ansible-doc -l: $module missing from the installed collection" >&2
        status=1
    fi
done

exit "$status"
