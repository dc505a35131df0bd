#!/usr/bin/env bash
# Creates .venv and installs ckptdiff with every extra and the test tools.
# torch is pinned to the CPU build first: a newer or unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[all,dev]"
# Headless Chromium for the HTML report tests (tests/test_html_browser.py skip without it): Debian's
# package, never a downloaded browser. Only where apt-get exists and chromium is missing; CI runs
# as root, elsewhere sudo is used when there is one.
if command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
  as_root=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then as_root="sudo -n"; fi
  if [ "$(id -u)" -eq 0 ] || [ -n "$as_root" ]; then
    $as_root apt-get update -qq && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium >/dev/null || echo "chromium not installed: the browser tests will skip" >&2
  fi
fi
echo "ckptdiff installed in .venv ($(.venv/bin/ckptdiff --help >/dev/null && echo ok))"
