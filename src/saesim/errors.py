"""One exception type for bad input: its message is shown to the user as is."""


class SaesimError(Exception):
    """Bad input or an unusable artifact. The message names the file or key and the problem."""


def missing_path_reason(path) -> str:
    """Why ``path`` cannot be opened although it may look present: a symlink loop, a symlink to
    nothing, or plainly no such file or directory (for one-line errors)."""
    import errno
    import os

    p = os.fspath(path)
    if os.path.islink(p):
        try:
            os.stat(p)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return f"symlink loop ({p} -> {os.readlink(p)} leads back to itself)"
            return f"dangling symlink (points to {os.readlink(p)}, which does not exist)"
    return "no such file or directory"


def check_no_broken_links(paths, what: str = "artifact") -> None:
    """Stop (one line) at the first path that is a symlink to nothing or a symlink loop:
    tools that look at the link itself (Snakemake's output check) would take it as present."""
    import os

    for p in paths:
        if os.path.islink(p) and not os.path.exists(p):
            raise SaesimError(f"{p}: {what} is a {missing_path_reason(p)}; remove the link so it can be rebuilt")
