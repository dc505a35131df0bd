#!/usr/bin/env bash
# Creates .venv and installs ckptdiff with every extra and the test tools.
# torch is pinned to the CPU build first: a newer or unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[all,dev]"
echo "ckptdiff installed in .venv ($(.venv/bin/ckptdiff --help >/dev/null && echo ok))"
