"""Shot boundaries with PySceneDetect's ContentDetector, and the clip-length policy."""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

from scenedetect import ContentDetector, SceneManager, open_video

# importing scenedetect resets its logger to INFO ("Detecting scenes..." for every video)
logging.getLogger("pyscenedetect").setLevel(logging.WARNING)


@dataclass
class SceneList:
    """Scenes of one video as frame ranges [start, end), covering every decoded frame."""

    scenes: list[tuple[int, int]]  # (first frame, first frame after) per scene, in order
    fps: float  # frame rate the detector used to number frames
    frames_read: int  # frames the detector decoded


def detect_content_scenes(path: str, threshold: float = 27.0, min_scene_len: int = 15) -> SceneList:
    """PySceneDetect's `detect(path, ContentDetector(threshold, min_scene_len))`, whole video.

    Same decoder (OpenCV), same automatic downscaling, same detector as PySceneDetect's own
    `detect()`; a video without cuts gives one scene.
    """
    video = open_video(str(path), backend="opencv")
    manager = SceneManager()
    manager.add_detector(ContentDetector(threshold=threshold, min_scene_len=min_scene_len))
    frames_read = manager.detect_scenes(video=video)
    scenes = manager.get_scene_list(start_in_scene=True)
    ranges = [(s.frame_num, e.frame_num) for s, e in scenes]
    return SceneList(scenes=ranges, fps=float(video.frame_rate), frames_read=int(frames_read))


def clip_policy(
    scenes: list[tuple[int, int]],
    fps: float,
    min_seconds: float,
    max_seconds: float | None,
) -> tuple[list[tuple[int, int]], int]:
    """Apply the clip-length policy to scene frame ranges; returns (clips, number dropped).

    A scene longer than `max_seconds` is split into the fewest equal pieces (whole frames) that
    are each at most `max_seconds` long; then pieces shorter than `min_seconds` are dropped.
    """
    clips: list[tuple[int, int]] = []
    dropped = 0
    max_frames = None if max_seconds is None else max_seconds * fps
    for start, end in scenes:
        length = end - start
        pieces = 1 if max_frames is None else max(1, math.ceil(length / max_frames - 1e-9))
        bounds = [start + (length * i) // pieces for i in range(pieces + 1)]
        for a, b in itertools.pairwise(bounds):
            if b <= a or (b - a) / fps < min_seconds - 1e-9:
                dropped += 1
            else:
                clips.append((a, b))
    return clips, dropped
