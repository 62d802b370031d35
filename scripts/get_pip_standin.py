# Offline stand-in for the get-pip bootstrap script that ansible-test downloads.
# Copyright: ironwall.iptables maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bootstrap pip into an ansible-test virtualenv without downloading get-pip.

ansible-test runs this file (cached as ~/.ansible/test/cache/get_pip_<ver>.py by
scripts/setup.sh) inside each fresh, pip-less sanity virtualenv with arguments like
``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.
Python's own ensurepip provides a pip; that pip then installs the exact pip version
ansible-test asked for from the configured package index. The get-pip-only options
--no-setuptools and --no-wheel are dropped: plain pip has no such options and
installs neither package unless asked to.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ("--no-setuptools", "--no-wheel")


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
