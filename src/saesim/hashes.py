"""Content hashes of files, the one definition every artifact's recorded sha256 comes from
(trained SAE folders, resume checkpoints, the JSON contract's inputs, per-latent tables)."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB blocks: memory stays flat at any size."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
