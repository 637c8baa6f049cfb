"""Files that hold credentials: readable and writable by their owner only (mode 0600).

Every writer of such a file (the local stack's Redis ACL and S3Proxy config, a region's
``feast.env`` and ``feature_store.yaml``) goes through ``write_secret_file``.
"""

from __future__ import annotations

import os
from pathlib import Path

SECRET_FILE_MODE = 0o600


def write_secret_file(path: Path, text: str | bytes) -> None:
    """Write ``text`` (str as UTF-8, or bytes) to ``path`` with mode 0600, created or replaced.

    A file that existed with wider permissions is narrowed to 0600 before anything is
    written to it, whatever the umask. Raises ``OSError`` (e.g. ``PermissionError`` when the
    file belongs to another user).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_FILE_MODE)
    try:
        os.fchmod(fd, SECRET_FILE_MODE)  # O_CREAT's mode applies only to a new file
    except BaseException:
        os.close(fd)
        raise
    data = text.encode("utf-8") if isinstance(text, str) else text
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
