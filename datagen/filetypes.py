"""Names for the kinds of file a corpus or build folder may hold besides regular files."""
from __future__ import annotations

import stat


def special_kind(mode: int) -> str:
    """What a non-regular, non-link file is: FIFO, socket, device, folder."""
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISDIR, "a folder"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")

# a build folder's bookkeeping (config.json, inputs.json, manifest parts), beside its shards and manifests
STATE_DIR = ".build"
