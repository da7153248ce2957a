"""Where the shared test data lies: ../shared/data beside the checkout, or $INTERNVID_SHARED_DATA."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(
    os.environ.get("INTERNVID_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REAL_VIDEOS = SHARED_DATA / "videos"  # the real sample videos
RELEASE_DATA = SHARED_DATA / "internvid"  # InternVid release rows and queries
