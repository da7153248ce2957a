"""Training clip loading: frames picked by time in one pass vs decode-everything-then-pick.

For every clip file in the shards of a run folder (default: a fresh `internvid run` of the
real videos in ../shared/data/videos, or of the demo videos): ours (`train.data.decode_at` at
8 random segment times + crop/flip/normalise, what `ShardClips` does per item) and frame shards
(`internvid train-frames`: 8 of 16 stored JPEGs) against the straightforward loader (every frame
to RGB, pick 8, resize). One thread of Python; PyAV's own
decoder threads as configured by both. Usage: python benchmarks/bench_train_data.py [RUN_DIR]
"""

from __future__ import annotations

import io
import itertools
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from internvid.models.preprocess import frames_to_tensor
from internvid.train.data import decode_at, frames_to_input, segment_times

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def clips_of(run_dir: Path) -> list[tuple[bytes, float, float]]:
    """(mp4 bytes, start_shift, duration) of every clip in the run's shards."""
    out = []
    for tar_path in sorted((run_dir / "shards").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: m for m in tar if m.isfile()}
            for name, m in members.items():
                if not name.endswith(".mp4"):
                    continue
                row = json.loads(tar.extractfile(members[name[:-4] + ".json"]).read())
                meta = row["meta"] if isinstance(row["meta"], dict) else json.loads(row["meta"])
                data = tar.extractfile(m).read()
                out.append((data, float(meta.get("start_shift") or 0), float(row["duration"])))
    return out


def ours(data: bytes, start: float, duration: float, rng: np.random.Generator) -> None:
    frames = decode_at(data, segment_times(start, duration, 8, rng), 8)
    frames_to_input(frames, 224, rng)


def naive(data: bytes, start: float, duration: float, rng: np.random.Generator) -> None:
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    edges = np.linspace(0, len(frames), 9)
    picks = [int(rng.uniform(a, b)) for a, b in itertools.pairwise(edges)]
    frames_to_tensor([frames[min(i, len(frames) - 1)] for i in picks], size=224)


def to_jpegs(data: bytes, start: float, duration: float) -> list[bytes]:
    """What `internvid train-frames` stores: 16 frames, short side 256, JPEG quality 90."""
    out = []
    for img in decode_at(data, segment_times(start, duration, 16, None), 16):
        h, w = img.shape[:2]
        scale = 256 / min(h, w)
        if scale < 1:
            img = cv2.resize(
                img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
        out.append(
            cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        )
    return out


def from_jpegs(jpegs: list[bytes], rng: np.random.Generator) -> None:
    """What `ShardClips` does per item of a frame shard: 8 of the 16, decoded, augmented."""
    picks = [int(2 * k + 2 * rng.random()) for k in range(8)]
    frames = [cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR) for i in picks]
    frames_to_input([np.ascontiguousarray(f[:, :, ::-1]) for f in frames], 224, rng)


def timed(fn, clips, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for clip in clips:
            fn(*clip, rng)
        best = min(best, time.perf_counter() - t0)
    return len(clips) / best


def main() -> None:
    if len(sys.argv) > 1:
        run_dir = Path(sys.argv[1])
        clips = clips_of(run_dir)
    else:
        from internvid.config import RunConfig
        from internvid.media.synth import write_demo_videos
        from internvid.run import run

        with tempfile.TemporaryDirectory() as tmp:
            src = REAL if REAL.is_dir() else Path(tmp) / "videos"
            if src != REAL:
                write_demo_videos(src)
            cfg = RunConfig()
            cfg.cut.mode = "exact"
            run([str(src)], Path(tmp) / "out", cfg, progress=False)
            clips = clips_of(Path(tmp) / "out")
    seconds = sum(d for _, _, d in clips)
    print(f"{len(clips)} clips, {seconds:.0f} s of video")
    base = timed(naive, clips)
    fast = timed(ours, clips)
    print("| loader | clips/s | vs naive |\n|---|---|---|")
    print(f"| decode all, pick 8 (naive) | {base:.2f} | 1.00x |")
    print(f"| decode_at, 8 converted (ours) | {fast:.2f} | {fast / base:.2f}x |")
    jpegs = [(to_jpegs(*clip),) for clip in clips]
    frames = timed(from_jpegs, jpegs)
    print(f"| frame shards: 8 JPEGs (train-frames) | {frames:.2f} | {frames / base:.2f}x |")


if __name__ == "__main__":
    main()
