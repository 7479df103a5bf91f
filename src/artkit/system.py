"""What this machine offers: the default number of worker processes."""

from __future__ import annotations

import os
from pathlib import Path

MAX_DEFAULT_WORKERS = 8  # beyond this, more loader or scan processes rarely pay for their memory


def default_workers() -> int:
    """Worker processes for data loading and image scans: one per CPU core, at most 8."""
    return max(1, min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1))


def cache_dir() -> Path:
    """Where artkit keeps caches: ``$ARTKIT_CACHE_DIR``, else ``~/.cache/artkit``."""
    env = os.environ.get("ARTKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "artkit"
