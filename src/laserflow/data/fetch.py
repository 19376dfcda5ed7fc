"""Downloads: retried, checksummed, written atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.request

from ..io import LaserflowError, atomic_path

log = logging.getLogger(__name__)


def download(url: str, target: str | os.PathLike, sha256: str | None = None, retries: int = 3, timeout: float = 60) -> str:
    """Fetch ``url`` to ``target``; verify ``sha256`` when given. Returns the file's sha256."""
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(target) as tmp:
                digest = hashlib.sha256()
                with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                    while block := response.read(1 << 20):
                        digest.update(block)
                        out.write(block)
                found = digest.hexdigest()
                if sha256 and found != sha256:
                    raise LaserflowError(f"{url}: sha256 mismatch: expected {sha256}, found {found}")
            return found
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last_error = err
            log.warning("download of %s failed (attempt %d/%d): %s", url, attempt, retries, err)
            if attempt < retries:
                time.sleep(2**attempt)
    raise LaserflowError(
        f"{url} is unreachable after {retries} attempts ({last_error}); "
        "download the file elsewhere and point the dataset's 'local' key at it"
    )
