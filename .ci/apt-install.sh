# Sourced by the .ci/setup-*.sh scripts, after each defines log(). Not executable on its own.

# require_root WHAT: return 1, saying why on stderr, unless running as root.
require_root() {
    if [ "$(id -u)" != 0 ]; then
        log "needs root to $1 (running as $(id -un))"
        return 1
    fi
}

# apt_install PACKAGE...: Debian packages, quietly, without recommends.
apt_install() {
    log "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "$@" >&2
}
