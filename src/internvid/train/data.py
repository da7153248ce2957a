"""Training clips from our WebDataset shards (KEY.mp4 or frames KEY.NN.jpg, + KEY.txt), augmented."""

from __future__ import annotations

import glob
import io
import itertools
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from internvid.engine.sample import Failure
from internvid.models.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    frames_to_tensor,
    sample_indices,
)
from internvid.train.index import (  # noqa: F401 (the index's records, re-exported)
    FRAME_EXTS,
    ClipIndex,
    Member,
    Subset,
    TrainClip,
    draw_subset,
    index_shard,
)

log = logging.getLogger(__name__)

CROP_SCALE = (0.5, 1.0)  # RandomResizedCrop area range (the UMT / ViCLIP training transform)
CROP_RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop aspect-ratio range
MAX_RETRIES = 8  # a clip that fails to decode is replaced by the next one, at most this often


def expand_shards(spec: str | Sequence[str]) -> list[Path]:
    """Shard paths from a run folder (its shards/*.tar), a glob, a tar, or a list of those."""
    specs = [spec] if isinstance(spec, str | Path) else list(spec)
    out: list[Path] = []
    for item in specs:
        path = Path(item)
        if path.is_dir():
            found = sorted((path / "shards").glob("*.tar")) or sorted(path.glob("*.tar"))
        elif any(ch in str(item) for ch in "*?["):
            found = [Path(p) for p in sorted(glob.glob(str(item)))]
        else:
            found = [path]
        if not found:
            raise FileNotFoundError(f"no .tar shards in {item}")
        out.extend(found)
    missing = [str(p) for p in out if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"shards not found: {', '.join(missing[:5])}")
    return out


def segment_times(
    start: float, duration: float, n: int, rng: np.random.Generator | None
) -> list[float]:
    """The n sample times of a clip [start, start + duration): one per equal segment, uniformly
    random inside it (training, `rng` given) or its middle (evaluation)."""
    edges = start + duration * np.arange(n + 1) / n
    if rng is None:
        return [float((a + b) / 2) for a, b in itertools.pairwise(edges)]
    return [float(a + (b - a) * rng.random()) for a, b in itertools.pairwise(edges)]


def decode_at(data: bytes, times: Sequence[float] | None, n: int) -> list[np.ndarray]:
    """RGB frames (H, W, 3) on screen at each of `times` (seconds; sorted or not) of an mp4.

    `times` None: the clip's length is unknown; the official evaluation's frames of all frames
    (`preprocess.sample_indices(len, n, "middle")`: middle of n equal segments, padded with the
    last frame when the clip has fewer than n).
    One decoding pass; only the picked frames are converted to arrays. Not `media.frames.frames_at`:
    that one takes the frame nearest a time (rounding at half a frame), counts times from the
    stream's start time and turns frames upright, so about half of the training frames would
    change; this keeps the frame on screen at the time, as training always had.
    """
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if times is None:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            if not frames:
                raise ValueError("no video frames")
            return [frames[i] for i in sample_indices(len(frames), n, "middle")]
        order = sorted(range(len(times)), key=lambda i: times[i])
        picked: dict[int, np.ndarray] = {}
        prev = None
        j = 0
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else 0.0
            while j < len(order) and t > times[order[j]] + 1e-6:
                chosen = prev if prev is not None else frame  # the frame on screen at that time
                picked[order[j]] = chosen.to_ndarray(format="rgb24")
                j += 1
            if j == len(order):
                break
            prev = frame
        if prev is None and not picked:
            raise ValueError("no video frames")
        while j < len(order):  # times past the last frame: the last frame
            picked[order[j]] = prev.to_ndarray(format="rgb24")
            j += 1
    return [picked[i] for i in range(len(times))]


def crop_box(
    height: int, width: int, rng: np.random.Generator, scale=CROP_SCALE, ratio=CROP_RATIO
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box (top, left, h, w): 10 tries, then a centre crop."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def frames_to_input(
    frames: Sequence[np.ndarray], size: int, rng: np.random.Generator | None
) -> torch.Tensor:
    """(H, W, 3) uint8 frames -> (T, 3, size, size) normalised; with `rng`: one random resized
    crop and one coin flip for the whole clip (training); without: the whole frame resized,
    as `preprocess.frames_to_tensor` (evaluation)."""
    if rng is None:
        return frames_to_tensor(frames, size=size)
    top, left, ch, cw = crop_box(*frames[0].shape[:2], rng)
    flip = bool(rng.random() < 0.5)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 1, 3)
    std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 1, 3)
    out = np.empty((len(frames), 3, size, size), dtype=np.float32)  # (T, 3, S, S)
    for i, frame in enumerate(frames):
        crop = np.ascontiguousarray(frame[top : top + ch, left : left + cw])
        img = cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)  # (S, S, 3) uint8
        if flip:
            img = img[:, ::-1]
        out[i] = ((img.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out)


class ShardClips(torch.utils.data.Dataset):
    """The captioned clips of our shards as a map-style data set: item i -> (frames, caption).

    The index (shard, key, byte range, caption) is read once from the tar headers; items read
    their mp4 by byte range. `item(i, draw)` makes the training randomness (frame per segment,
    crop, flip) a function of `draw`, so a resumed run sees exactly the same inputs.
    """

    def __init__(
        self,
        shards: str | Sequence[str],
        frames: int = 8,
        size: int = 224,
        train: bool = True,
        pre_text: bool = True,
        min_words: int = 2,
        subset: float = 1.0,
        subset_seed: int = 42,
        cache_dir: str | Path | None = None,
    ) -> None:
        """As the official training set (`dataset/sqlite_dataset.py`): captions go through
        `models.text.pre_text` (`pre_text`), clips whose caption then has fewer than `min_words`
        words are left out (0: none), and `subset` < 1 keeps int(subset x n) of the remaining n
        clips, drawn as `random.seed(subset_seed); random.sample(clips, k)` (its finishing
        stage's fixed 50%). `skipped` counts every clip left out, by reason. The index lives
        in one file per shard under `cache_dir` (default `train.index.cache_root()`), read
        lazily: a count per shard and a few shards' clips are all it holds."""
        if not 0.0 < subset <= 1.0:
            raise ValueError(f"subset is a fraction in (0, 1], got {subset}")
        self.shards = expand_shards(shards)
        self.frames, self.size, self.train = frames, size, train
        index = ClipIndex(self.shards, pre_text, min_words, cache_dir)
        skipped = dict(index.skipped)
        self.clips: Sequence[TrainClip] = index
        if subset < 1.0:
            k = int(subset * len(index))
            self.clips = Subset(index, draw_subset(len(index), k, subset_seed))
            skipped["not_in_subset"] = len(index) - k
        self.skipped = skipped  # reason -> clips left out of the index
        self.failures: dict[str, Failure] = {}  # clip id -> why it could not be decoded
        left_out = ", ".join(f"{k} {v}" for k, v in skipped.items() if v) or "none"
        if not len(self.clips):
            raise ValueError(
                f"no trainable clips in {len(self.shards)} shards (left out: {left_out})"
            )
        log.info(
            "%d clips from %d shards (left out: %s)", len(self.clips), len(self.shards), left_out
        )

    def __len__(self) -> int:
        return len(self.clips)

    def read_member(self, clip: TrainClip, member: Member) -> bytes:
        with open(self.shards[clip.shard], "rb") as f:
            f.seek(member.offset)
            data = f.read(member.size)
        if len(data) != member.size:
            raise ValueError(f"{clip.key}: shard ends inside a member")
        return data

    def read_frames(self, clip: TrainClip, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Pre-extracted frames: one per equal segment of the stored ones, random or middle."""
        stored = len(clip.frames)
        edges = np.linspace(0, stored, self.frames + 1)
        picks = [
            int(a + (b - a) * rng.random()) if rng is not None else int((a + b - 1) // 2)
            for a, b in itertools.pairwise(edges)
        ]
        out = []
        for i in picks:
            raw = np.frombuffer(self.read_member(clip, clip.frames[min(i, stored - 1)]), np.uint8)
            img = cv2.imdecode(raw, cv2.IMREAD_COLOR)  # (H, W, 3) BGR
            if img is None:
                raise ValueError(f"{clip.key}: frame {i} is not a readable image")
            out.append(np.ascontiguousarray(img[:, :, ::-1]))  # RGB
        return out

    def load(self, index: int, draw: int | None) -> tuple[torch.Tensor, str]:
        """Item `index` with the randomness of `draw` (None: evaluation sampling)."""
        clip = self.clips[index]
        rng = np.random.default_rng([draw, index]) if self.train and draw is not None else None
        if clip.video is None:
            return frames_to_input(self.read_frames(clip, rng), self.size, rng), clip.caption
        times = (
            segment_times(clip.start, clip.duration, self.frames, rng)
            if clip.duration > 0
            else None
        )
        frames = decode_at(self.read_member(clip, clip.video), times, self.frames)
        return frames_to_input(frames, self.size, rng), clip.caption

    def item(self, index: int, draw: int | None = None) -> tuple[torch.Tensor, str]:
        """Like `load`, but a clip that fails to decode is logged and replaced by the next."""
        for attempt in range(MAX_RETRIES):
            i = (index + attempt) % len(self.clips)
            try:
                return self.load(i, draw)
            except Exception as e:  # any decoder error: skip the clip, go on
                key = self.clips[i].key
                if key not in self.failures:
                    source = str(self.shards[self.clips[i].shard])
                    message = f"{type(e).__name__}: {e}"
                    self.failures[key] = Failure(key, "train_data", "decode_error", message, source)
                    log.warning("clip %s cannot be decoded (%s); using the next", key, e)
        raise RuntimeError(f"{MAX_RETRIES} clips in a row from {index} failed to decode")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        return self.item(index, None)
