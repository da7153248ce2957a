"""Cut clips out of a video with one ffmpeg pass: re-encoded, keyframes forced at every boundary."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

from internvid.media.ffmpeg import run_ffmpeg


@dataclass
class CutSpec:
    """How to encode clips (exact mode)."""

    codec: str = "libx264"  # video encoder
    crf: int = 20  # x264 quality
    preset: str = "veryfast"  # x264 speed preset
    max_height: int | None = 720  # scale taller videos down to this height; None keeps the size
    audio: bool = True  # keep the first audio stream (AAC)
    timeout: float | None = None  # seconds before ffmpeg is stopped


def cut_exact(
    src: str | Path,
    ranges: list[tuple[int, int]],
    fps: float,
    out_dir: str | Path,
    spec: CutSpec,
    height: int | None = None,
) -> list[Path]:
    """Write one mp4 per frame range [start, end) of `src`; returns the files in `ranges` order.

    One ffmpeg process decodes the span from the first clip's start to the last clip's end once,
    re-encodes it with a keyframe forced on the first frame of every clip (by frame number, not
    time), and the segment muxer splits at those frame numbers. Boundaries are therefore
    frame-exact: a clip holds exactly frames start..end-1 of the source. Gaps between clips
    (dropped short scenes) become segments that are discarded.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(ranges)
    for (a0, b0), (a1, _) in itertools.pairwise(ordered):
        if a1 < b0:
            raise ValueError(f"clips overlap: [{a0},{b0}) and [{a1}, ...)")
    first, last = ordered[0][0], ordered[-1][1]
    bounds = sorted({f for r in ranges for f in r} - {first, last})
    # frame numbers in the output, which starts at source frame `first`
    rel = [f - first for f in bounds]
    pattern = out_dir / "seg_%05d.mp4"
    seglist = out_dir / "segments.csv"
    args: list[str] = []
    if first > 0:  # accurate input seek, half a frame early so rounding cannot skip a frame
        args += ["-ss", f"{(first - 0.5) / fps:.6f}"]
    args += ["-i", str(src), "-frames:v", str(last - first), "-map", "0:v:0"]
    if spec.audio:
        args += ["-map", "0:a:0?", "-c:a", "aac", "-b:a", "128k"]
    if spec.max_height and height and height > spec.max_height:
        args += ["-vf", f"scale=-2:{spec.max_height}"]
    args += ["-fps_mode", "passthrough", "-c:v", spec.codec, "-pix_fmt", "yuv420p"]
    if spec.codec.startswith("libx264"):
        args += ["-crf", str(spec.crf), "-preset", spec.preset]
    if rel:
        expr = "+".join(f"eq(n,{n})" for n in rel)
        args += ["-force_key_frames", f"expr:{expr}"]
    args += ["-f", "segment", "-reset_timestamps", "1", "-segment_format", "mp4"]
    args += ["-segment_list", str(seglist), "-segment_list_type", "csv"]
    if rel:
        args += ["-segment_frames", ",".join(map(str, rel))]
    else:
        args += ["-segment_time", "1000000000"]
    args += ["-segment_format_options", "movflags=+faststart", str(pattern)]
    run_ffmpeg(args, timeout=spec.timeout)

    with open(seglist, newline="") as f:
        produced = [out_dir / row[0] for row in csv.reader(f) if row]
    expected = len(bounds) + 1
    if len(produced) != expected:
        raise RuntimeError(f"ffmpeg wrote {len(produced)} segments, expected {expected}")
    # segment k spans [edges[k], edges[k+1]); map each requested range to its segment
    edges = [first, *bounds, last]
    index = {edges[k]: k for k in range(len(edges) - 1)}
    files = []
    for a, b in ranges:
        k = index[a]
        if edges[k + 1] != b:
            raise RuntimeError(f"segment {k} ends at frame {edges[k + 1]}, clip at {b}")
        files.append(produced[k])
    return files
