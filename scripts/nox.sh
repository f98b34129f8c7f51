#!/usr/bin/env bash
# Run nox from a virtualenv of its own, made on first use:  scripts/nox.sh -s tests
#
# Why not `python3 -m pip install nox`: a distribution's python3 (Debian 12, Ubuntu 24.04, Fedora, ...) is
# "externally managed" (PEP 668) and refuses pip installs outside a virtualenv. A private virtualenv works the
# same with a distribution's python3, pyenv's or python.org's. The sessions run on this same python3.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
tool=".nox/.tool"  # nox's own virtualenv, beside the sessions' ones (.gitignored with them)

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "nox.sh: llmswitch needs Python 3.10 or newer; $python is $("$python" --version 2>&1 || echo missing)." >&2
  echo "nox.sh: install a newer python3, or point PYTHON at one (PYTHON=python3.11 scripts/nox.sh ...)." >&2
  exit 2
fi

if [ ! -x "$tool/bin/nox" ]; then
  echo "nox.sh: installing nox into $tool (once)" >&2
  rm -rf "$tool"
  if ! venv_log=$("$python" -m venv "$tool" 2>&1); then
    rm -rf "$tool"
    echo "$venv_log" >&2
    echo "nox.sh: $python cannot create a virtualenv. On Debian or Ubuntu: sudo apt-get install python3-venv" >&2
    exit 2
  fi
  if ! "$tool/bin/python" -m pip install --quiet --disable-pip-version-check "nox>=2024.4"; then
    rm -rf "$tool"
    echo "nox.sh: could not install nox from the package index (see above)." >&2
    exit 1
  fi
fi
exec "$tool/bin/python" -m nox "$@"
