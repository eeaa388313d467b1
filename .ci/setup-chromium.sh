#!/usr/bin/env bash
# Install Debian's chromium for tests/test_report.py (the Snakemake report opened in a
# headless browser through Playwright, which drives /usr/bin/chromium: no `playwright install`).
#
# Idempotent: does nothing when /usr/bin/chromium already runs. Otherwise installs the
# packages with apt-get (as root). Exit status 0 when chromium is there; non-zero, with the
# reason on stderr, when it cannot be installed (the browser test then skips, naming it).
set -euo pipefail

log() { echo "setup-chromium: $*" >&2; }
. "$(dirname "$0")/apt-install.sh"

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; then
    log "$("$CHROMIUM" --version 2>/dev/null) is already installed"
    exit 0
fi

require_root "install chromium with apt-get" || exit 1
apt_install chromium fonts-dejavu-core

if "$CHROMIUM" --version >/dev/null 2>&1; then
    log "$("$CHROMIUM" --version 2>/dev/null) installed"
    exit 0
fi
log "chromium was installed but $CHROMIUM --version fails"
exit 1
