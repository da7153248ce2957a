"""The one "segments" frame-index rule equals the official get_frame_indices(sample="middle")."""

from __future__ import annotations

import numpy as np
import pytest

from internvid.media.onepass import FrameNeed
from internvid.media.sampling import sample_indices
from internvid.models import preprocess


def _official_middle(num_frames: int, vlen: int) -> list[int]:
    """ViCLIP dataset/video_utils.py get_frame_indices(num_frames, vlen, sample="middle"),
    transcribed step by step (intervals, (start, end - 1) ranges, their floor middle, padding)."""
    acc_samples = min(num_frames, vlen)
    intervals = np.linspace(start=0, stop=vlen, num=acc_samples + 1).astype(int)
    ranges = [(intervals[i], intervals[i + 1] - 1) for i in range(len(intervals) - 1)]
    frame_indices = [(x[0] + x[1]) // 2 for x in ranges]
    if len(frame_indices) < num_frames:
        padded = [frame_indices[-1]] * num_frames
        padded[: len(frame_indices)] = frame_indices
        frame_indices = padded
    return [int(i) for i in frame_indices]


@pytest.mark.parametrize("count", [1, 4, 8, 16])
def test_middle_is_the_official_function(count: int) -> None:
    for vlen in range(1, 301):
        want = _official_middle(count, vlen)
        assert sample_indices(vlen, count, "middle") == want, (vlen, count)
        # the score stage's and search's frames ("segments"), anywhere in the video
        need = FrameNeed("v", "segments", count)
        assert need.indices(1000, 1000 + vlen, 25.0) == [1000 + i for i in want], (vlen, count)


def test_one_function() -> None:
    assert preprocess.sample_indices is sample_indices  # evaluation and training use this one
    # where the former rule int(seg * i + seg / 2) differed: 100 frames, 8 segments
    assert sample_indices(100, 8, "middle") == [5, 18, 30, 43, 55, 68, 80, 93]
    assert sample_indices(3, 8, "middle") == [0, 1, 2, 2, 2, 2, 2, 2]
    with pytest.raises(ValueError):
        sample_indices(0, 8, "middle")
