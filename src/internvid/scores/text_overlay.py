"""Text overlay score: share of a frame covered by detected text, max over a clip's frames."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from internvid.engine.threads import worker_threads
from internvid.scores.base import Loaded, ScoreItem, Scorer, register

logger = logging.getLogger(__name__)

# The package that ships the OCR models (PP-OCRv4 text detection and recognition, ONNX) inside
# its wheel: nothing is downloaded at run time.
OCR_PACKAGE = "rapidocr-onnxruntime"
# Frames are resized so that their longer side has this many pixels before detection.
DEFAULT_SIDE = 960
# Min mean probability inside a candidate box for the detector to report it (RapidOCR's default).
DEFAULT_BOX_THRESH = 0.5
# How far each detected text kernel is grown back into a box (RapidOCR's default).
DEFAULT_UNCLIP_RATIO = 1.6
# Min recognition confidence for a detected box to count as text (RapidOCR's text_score).
# The detector alone also fires on faces, animals and people in film footage (up to 0.30 of a
# frame in our samples); reading the box back rejects those and keeps real text.
DEFAULT_MIN_TEXT_SCORE = 0.5
# Boxes whose text-line height (short side) exceeds this share of the frame's shorter side are
# dropped: overlays (subtitles, captions, slides, watermarks, titles) sit far below it, while the
# detector's misfires on faces and bodies are blobs of a quarter to a third of the frame.
DEFAULT_MAX_LINE_HEIGHT = 0.2
# The detector's input normalisation, as PaddleOCR's own predict_det.py uses it (ImageNet
# statistics on BGR input). rapidocr-onnxruntime 1.4 ships 0.5/0.5 instead, which fires more
# often on faces in film frames.
DET_MEAN = (0.485, 0.456, 0.406)
# Std of the same normalisation.
DET_STD = (0.229, 0.224, 0.225)
# A crop this many times taller than wide is vertical text: turn it before recognition.
_VERTICAL_RATIO = 1.5


def _rapidocr() -> tuple[Any, Any, dict[str, Any]]:
    """RapidOCR's detector and recognizer classes and its packaged config (model paths resolved)."""
    try:
        from rapidocr_onnxruntime import main as rapid_main
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
        from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
        from rapidocr_onnxruntime.utils import read_yaml, update_model_path
    except ImportError as exc:
        raise ImportError(
            f"text overlay scoring needs {OCR_PACKAGE} (its ONNX models ship inside the wheel, "
            f"no download): pip install {OCR_PACKAGE}  [import failed: {exc}]"
        ) from exc
    config = update_model_path(read_yaml(rapid_main.DEFAULT_CFG_PATH))
    return TextDetector, TextRecognizer, config


def _crop(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The quadrilateral (tl, tr, br, bl) warped upright into its own image."""
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(
        image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if height >= _VERTICAL_RATIO * width:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


class TextOverlayScorer:
    """Fraction of the frame area covered by text (subtitles, watermarks, slides).

    Each frame (RGB uint8 HxWx3) is resized so that its longer side is `side` pixels (up or
    down: text is seen at one scale whatever the source resolution). RapidOCR's text detector
    finds candidate boxes; boxes taller than `max_line_height` of the frame's shorter side are
    dropped; with `verify` (the default) each remaining box is read by the recognizer and kept
    only if read with confidence >= `min_text_score` (the text itself is discarded). The kept
    boxes are filled into one mask (overlaps count once); the score is the mask's share of the
    frame. A clip scores the max over its frames, so text in any sampled frame counts.
    CPU (onnxruntime), deterministic; the models load once, in the constructor.
    """

    def __init__(
        self,
        side: int = DEFAULT_SIDE,
        verify: bool = True,
        min_text_score: float = DEFAULT_MIN_TEXT_SCORE,
        max_line_height: float = DEFAULT_MAX_LINE_HEIGHT,
        box_thresh: float = DEFAULT_BOX_THRESH,
        unclip_ratio: float = DEFAULT_UNCLIP_RATIO,
        threads: int | None = None,
    ) -> None:
        if side < 32:
            raise ValueError(f"side must be at least 32 pixels, got {side}")
        detector_class, recognizer_class, config = _rapidocr()
        self.side = side  # longer side of the frames the detector sees
        self.verify = verify  # read boxes back and drop those that are not text
        self.min_text_score = min_text_score  # recognition confidence a box needs to count
        self.max_line_height = max_line_height  # tallest text line, as a share of the short side
        session = {
            "use_cuda": False,
            "use_dml": False,
            "intra_op_num_threads": threads or -1,  # -1: onnxruntime's default
            "inter_op_num_threads": -1,
        }
        det_config = {
            **config["Det"],
            **session,
            "limit_type": "max",  # no further resizing: only rounding to multiples of 32
            "limit_side_len": side,
            "mean": list(DET_MEAN),
            "std": list(DET_STD),
            "box_thresh": box_thresh,
            "unclip_ratio": unclip_ratio,
        }
        self.detector = detector_class(det_config)
        self.recognizer = recognizer_class({**config["Rec"], **session}) if verify else None
        logger.debug("text overlay scorer: RapidOCR at %d px, verify=%s", side, verify)

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 frame, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        scale = self.side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(frame, size, interpolation=interpolation)

    def _detect(self, frame: np.ndarray) -> tuple[tuple[int, int], list[np.ndarray]]:
        """(height, width) of the resized frame and the text boxes that count, in its pixels."""
        bgr = np.ascontiguousarray(self._resize(frame)[:, :, ::-1])  # both models expect BGR
        found, _ = self.detector(bgr)
        boxes = [] if found is None else [np.asarray(b, dtype=np.float32) for b in found]
        tallest = self.max_line_height * min(bgr.shape[:2])
        boxes = [b for b in boxes if min(cv2.minAreaRect(b)[1]) <= tallest]
        if boxes and self.recognizer is not None:
            read, _ = self.recognizer([_crop(bgr, b) for b in boxes])
            boxes = [
                b
                for b, (text, score) in zip(boxes, read, strict=True)
                if score >= self.min_text_score and text.strip()
            ]
        return bgr.shape[:2], boxes

    def boxes(self, frame: np.ndarray) -> list[np.ndarray]:
        """The text quadrilaterals that count (4x2 float: x, y) in the frame's own pixels."""
        (h, w), found = self._detect(frame)
        scale = np.array([frame.shape[1] / w, frame.shape[0] / h], dtype=np.float32)
        return [b * scale for b in found]

    def coverage(self, frame: np.ndarray) -> float:
        """Share of the frame's area (0..1) inside the union of the text boxes."""
        shape, found = self._detect(frame)
        if not found:
            return 0.0
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(b).astype(np.int32) for b in found], 1)
        return float(np.count_nonzero(mask)) / mask.size

    def score_frames(self, frames: Sequence[np.ndarray]) -> list[float]:
        """Text coverage of each frame, in order."""
        return [self.coverage(frame) for frame in frames]

    def score_clips(self, clips: Sequence[Sequence[np.ndarray]]) -> list[float]:
        """Per clip, the max over its frames of the text coverage."""
        empty = [i for i, clip in enumerate(clips) if len(clip) == 0]
        if empty:
            raise ValueError(f"clips {empty} have no frames to score")
        return [max(self.score_frames(clip)) for clip in clips]


NEED_TEXT = "score_text"  # 4 uniform frames at score.text_frame_size for the text detector


@register
class TextOverlay(Scorer):
    """The largest fraction of frame area covered by detected text over 4 uniform frames."""

    name = "text_overlay"
    description = "largest fraction of the frame covered by text"
    value_range = (0.0, 1.0)
    order = 80

    def frame_needs(self) -> tuple[Any, ...]:
        from internvid.media.onepass import FrameNeed

        return (FrameNeed(NEED_TEXT, "uniform", 4, short_side=self.cfg.text_frame_size),)

    def load(self, ctx: Loaded) -> None:
        self.scorer = TextOverlayScorer(threads=worker_threads())  # the worker's share, if set

    def score(self, items: list[ScoreItem]) -> list[dict[str, float]]:
        values = self.scorer.score_clips([it.frames[NEED_TEXT] for it in items])
        return [{self.name: round(float(v), 4)} for v in values]
