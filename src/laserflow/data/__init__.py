"""Dataset preparation: each source becomes canonical JSON Lines of {index, question, answer}."""

import logging

from ..io import LaserflowError

log = logging.getLogger(__name__)


def check_size(dataset: str, found: int, expected: int | None, on_mismatch: str = "error") -> None:
    """Stop (or warn, if configured) when a processed source does not have its known size."""
    if expected is None or found == expected:
        return
    message = f"dataset {dataset}: expected {expected} items, found {found}"
    if on_mismatch == "warn":
        log.warning("%s", message)
        return
    raise LaserflowError(message + " (set size_mismatch: warn to continue anyway)")
