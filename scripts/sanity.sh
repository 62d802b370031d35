#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, offline except for PyPI.
#
# ansible-test insists that the working directory really is
# .../ansible_collections/ironwall/iptables (it resolves symlinks, so the link made by
# setup.sh does not do), so the files git knows about (tracked, plus new files that
# are not ignored) are copied into .cache/ansible-test/ansible_collections/ironwall/iptables
# and the test runs there (as a git repository of its own: ansible-test lists content with git). Each sanity test gets its own virtualenv (--venv) whose pip
# comes from the offline stand-in installed by setup.sh; its requirements come from PyPI.
#
# The controller is the .venv's Python 3.11. Tests that run per target Python (compile,
# import) also run on every other Python ansible-test supports (3.8-3.13) that is
# installed, because module code must still compile on 3.8; pyenv's shims are kept off
# PATH (they exist for versions that are not selected and fail when run) and the real
# interpreters are linked into .cache/pythons instead.
#
# Usage: scripts/sanity.sh [extra ansible-test sanity arguments, e.g. --test pep8]
# SANITY_PYTHON=3.11 limits the run to that one Python.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STAGE="$ROOT/.cache/ansible-test/ansible_collections/ironwall/iptables"
PYTHONS="$ROOT/.cache/pythons"

[ -x "$VENV/bin/ansible-test" ] || { echo "sanity: run 'make setup' first" >&2; exit 1; }
git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    || { echo "sanity: $ROOT is not a git checkout; cannot tell which files belong to the collection" >&2; exit 1; }

rm -rf "$STAGE"
mkdir -p "$STAGE"
# Tracked and untracked-but-not-ignored files that exist (a tracked file may be deleted).
(
    cd "$ROOT"
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' path; do
            case "$path" in
                .hypothesis/* | .ansible/* | .benchmarks/* | .pytest_cache/*) continue ;;  # tool caches
            esac
            if [ -e "$path" ] || [ -L "$path" ]; then printf '%s\0' "$path"; fi
        done \
        | tar --create --file=- --no-recursion --null --files-from=- \
        | tar --extract --file=- --directory="$STAGE"
)
# ansible-test lists content through the nearest enclosing git repository; without one
# of its own the stage would be seen as an ignored part of the checkout and skipped.
git -C "$STAGE" init --quiet
git -C "$STAGE" add --all

# Real interpreters for the target Pythons, and a PATH without pyenv's shims.
rm -rf "$PYTHONS"
mkdir -p "$PYTHONS"
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
clean_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$pyenv_root/shims" | paste -sd: -)
found=()
for minor in 8 9 10 11 12 13; do
    name=python3.$minor
    real=$(PATH="$clean_path" command -v "$name" 2>/dev/null || true)
    if [ -z "$real" ]; then  # pyenv: the newest installed 3.<minor>.x
        real=$(find "$pyenv_root/versions" -mindepth 3 -maxdepth 3 -path "*/versions/3.$minor.*/bin/$name" 2>/dev/null \
            | sort -V | tail -n 1)
    fi
    if [ -n "$real" ] && "$real" -c 'import venv' 2>/dev/null; then
        ln -s "$real" "$PYTHONS/$name"
        found+=("3.$minor")
    fi
done
export PATH="$VENV/bin:$PYTHONS:$clean_path"

python_args=()
if [ -n "${SANITY_PYTHON:-}" ]; then
    python_args=(--python "$SANITY_PYTHON")
fi

cd "$STAGE"
echo "==> ansible-test sanity in $STAGE"
echo "    controller: $("$VENV/bin/python" --version 2>&1); target Pythons found: ${found[*]:-none}${SANITY_PYTHON:+ (limited to $SANITY_PYTHON)}"
ansible-test sanity --venv "${python_args[@]}" --color no "$@"
