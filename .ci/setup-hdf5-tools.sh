#!/usr/bin/env bash
# Install Debian's hdf5-tools for tests/test_extraction.py::test_h5dump_shows_the_documented_schema
# (a store read by `h5dump -H`, not by saesim). Idempotent; exit status non-zero, with the
# reason on stderr, when it cannot be installed (that test then skips, naming it).
set -euo pipefail

log() { echo "setup-hdf5-tools: $*" >&2; }
. "$(dirname "$0")/apt-install.sh"

if command -v h5dump >/dev/null 2>&1; then
    log "h5dump is already installed"
    exit 0
fi
require_root "install hdf5-tools with apt-get" || exit 1
apt_install hdf5-tools
command -v h5dump >/dev/null 2>&1 && { log "h5dump installed"; exit 0; }
log "hdf5-tools was installed but h5dump is not on PATH"
exit 1
