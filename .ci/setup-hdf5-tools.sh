#!/usr/bin/env bash
# Install Debian's hdf5-tools for tests/test_extraction.py::test_h5dump_shows_the_documented_schema
# (a store read by `h5dump -H`, not by saesim). Idempotent; exit status non-zero, with the
# reason on stderr, when it cannot be installed (that test then skips, naming it).
set -euo pipefail

log() { echo "setup-hdf5-tools: $*" >&2; }

if command -v h5dump >/dev/null 2>&1; then
    log "h5dump is already installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    log "needs root to install hdf5-tools with apt-get (running as $(id -un))"
    exit 1
fi
log "installing hdf5-tools with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends hdf5-tools >&2
command -v h5dump >/dev/null 2>&1 && { log "h5dump installed"; exit 0; }
log "hdf5-tools was installed but h5dump is not on PATH"
exit 1
