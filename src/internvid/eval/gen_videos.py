"""The videos of `internvid eval-gen`: folders and list files with prompts, their first frames."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads inside the functions: `internvid --help` stays fast
    import numpy as np

NUM_FRAMES = 16  # frames per video: the 16-frame clips of FVD (the original code, StyleGAN-V)
PROMPT_KEYS = ("caption", "prompt", "text")  # list-file columns holding a video's prompt
VIDEO_KEYS = ("video", "path", "video_path", "clip", "file")  # list-file columns naming a video


def decode_frames(path: str | Path, num_frames: int = NUM_FRAMES, stride: int = 1) -> np.ndarray:
    """The first `num_frames` frames of a video, every `stride`-th from frame 0, as
    (T, H, W, 3) uint8 RGB; ValueError when the video is shorter."""
    import numpy as np

    from internvid.media.onepass import open_video

    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1: {num_frames}, {stride}")
    container, stream = open_video(path)
    frames: list[np.ndarray] = []
    try:
        for i, frame in enumerate(container.decode(stream)):
            if i % stride == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == num_frames:
                    break
    finally:
        container.close()
    if len(frames) < num_frames:
        raise ValueError(
            f"{path}: only {len(frames)} frames at stride {stride}; {num_frames} are needed"
        )
    return np.stack(frames)


@dataclass
class VideoItem:
    """One video to evaluate and, for CLIPSIM, its prompt."""

    path: Path  # the video file
    prompt: str | None = None  # the text it was generated from (None: not known)


def _sidecar_prompt(path: Path) -> str | None:
    side = path.with_suffix(".txt")
    if side.is_file():
        return side.read_text(encoding="utf-8").strip() or None
    return None


def list_videos(spec: str | Path) -> list[VideoItem]:
    """The videos of a folder (recursive, sorted) or of a list file, with their prompts.

    A list is .txt (one path per line) or .jsonl/.json/.csv (a `video`/`path` column and a
    `caption`/`prompt`/`text` column); relative paths are relative to the list. A video without
    a prompt column takes the text of its sidecar `STEM.txt` when there is one.
    """
    from internvid.config import VIDEO_EXTENSIONS
    from internvid.eval.sets import read_rows

    spec = Path(spec).expanduser()
    if spec.is_dir():
        exts = {*VIDEO_EXTENSIONS, ".gif"}
        files = sorted(f for f in spec.rglob("*") if f.is_file() and f.suffix.lower() in exts)
        return [VideoItem(f, _sidecar_prompt(f)) for f in files]
    if not spec.is_file():
        raise FileNotFoundError(f"{spec}: no such folder or list file")
    items: list[VideoItem] = []
    if spec.suffix.lower() == ".txt":
        names = [ln.strip() for ln in spec.read_text(encoding="utf-8").splitlines()]
        rows: list[dict[str, Any]] = [{"video": n} for n in names if n and not n.startswith("#")]
    else:
        rows = read_rows(spec)
    for i, row in enumerate(rows):
        name = next((row[k] for k in VIDEO_KEYS if row.get(k)), None)
        if name is None:
            raise ValueError(f"{spec}: record {i} has no video column ({', '.join(VIDEO_KEYS)})")
        path = Path(str(name)).expanduser()
        path = path if path.is_absolute() else spec.parent / path
        prompt = next((str(row[k]) for k in PROMPT_KEYS if row.get(k)), None)
        items.append(VideoItem(path, prompt if prompt is not None else _sidecar_prompt(path)))
    return items


def iter_clips(
    items: Sequence[VideoItem], num_frames: int, stride: int, workers: int = 2
) -> Iterator[tuple[VideoItem, np.ndarray | str]]:
    """(item, frames) in order, or (item, reason) for a video that cannot be decoded; decoded
    in `workers` threads, at most 2 x workers videos ahead of the consumer."""
    import av

    def load(item: VideoItem) -> np.ndarray | str:
        try:
            return decode_frames(item.path, num_frames, stride)
        except (OSError, ValueError, av.error.FFmpegError) as e:
            return str(e) or type(e).__name__

    ahead = max(1, workers) * 2
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending: deque[tuple[VideoItem, Future]] = deque()
        todo = iter(items)
        for item in todo:
            pending.append((item, pool.submit(load, item)))
            if len(pending) >= ahead:
                break
        while pending:
            item, future = pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(load, nxt)))
            yield item, future.result()
