#!/usr/bin/env bash
# Install Debian's chromium for tests/test_report.py (the Snakemake report opened in a
# headless browser through Playwright, which drives /usr/bin/chromium: no `playwright install`).
#
# Idempotent: does nothing when /usr/bin/chromium already runs. Otherwise installs the
# packages with apt-get (as root). Exit status 0 when chromium is there; non-zero, with the
# reason on stderr, when it cannot be installed (the browser test then skips, naming it).
set -euo pipefail

log() { echo "setup-chromium: $*" >&2; }

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; then
    log "$("$CHROMIUM" --version 2>/dev/null) is already installed"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "needs root to install chromium with apt-get (running as $(id -un))"
    exit 1
fi

log "installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2

if "$CHROMIUM" --version >/dev/null 2>&1; then
    log "$("$CHROMIUM" --version 2>/dev/null) installed"
    exit 0
fi
log "chromium was installed but $CHROMIUM --version fails"
exit 1
