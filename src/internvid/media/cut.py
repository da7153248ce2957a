"""Cut clips out of a video with ffmpeg.

"exact" (`cut_exact`): one pass, re-encoded, keyframes forced at every boundary: frame-exact.
"copy" (`cut_copy`): stream copy, one ffmpeg call per clip: no re-encode, but a file can only
start on a keyframe, so it starts up to one GOP before the clip (and may end a few frames after
it, see `cut_copy`); the actual span of every file is measured and returned.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from internvid.media.ffmpeg import run_ffmpeg


@dataclass
class CutSpec:
    """How to encode clips (exact mode)."""

    codec: str = "libx264"  # video encoder
    crf: int = 20  # x264 quality
    preset: str = "veryfast"  # x264 speed preset
    max_height: int | None = 720  # scale taller videos down to this height; None keeps the size
    scale_flags: str = (
        "area"  # swscale filter for that downscale (area: sharp and ~1.3x faster than bicubic)
    )
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
        args += ["-vf", f"scale=-2:{spec.max_height}:flags={spec.scale_flags}"]
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


@dataclass(frozen=True)
class VideoPackets:
    """The video stream's packets in decode order (read by demuxing, nothing decoded)."""

    time_base: Fraction  # of the stream's timestamps
    first_pts: int  # smallest pts of the stream: source time 0 (frame 0) of the clips
    container_start_us: int  # the container's start_time (what ffmpeg's -ss counts from)
    pts: list[int] = field(repr=False)  # per packet, decode order
    duration: list[int] = field(repr=False)  # per packet (0 when unknown)
    key: list[bool] = field(repr=False)  # per packet: a keyframe a decoder can start from
    _key_pts: list[int] = field(init=False, repr=False)  # keyframe pts, ascending
    _key_index: list[int] = field(init=False, repr=False)  # their decode indices
    _suffix_min: list[int] = field(init=False, repr=False)  # min pts from each index on

    def __post_init__(self) -> None:
        keys = sorted((p, i) for i, (p, k) in enumerate(zip(self.pts, self.key, strict=True)) if k)
        suffix_min = list(itertools.accumulate(reversed(self.pts), min))[::-1]  # non-decreasing
        object.__setattr__(self, "_key_pts", [p for p, _ in keys])
        object.__setattr__(self, "_key_index", [i for _, i in keys])
        object.__setattr__(self, "_suffix_min", suffix_min)

    def seconds(self, pts: int) -> float:
        """A pts as seconds of source time (relative to the stream's first pts)."""
        return float((pts - self.first_pts) * self.time_base)

    @property
    def keyframe_times(self) -> list[float]:
        """Seconds (source time) of every keyframe, ascending."""
        return [self.seconds(p) for p in self._key_pts]

    def seek_arg(self, pts: int) -> str:
        """ffmpeg's input -ss for the packet at `pts`, rounded up to the microsecond.

        The demuxer seeks to the last keyframe at or before it (that packet), and timestamps
        are shifted by it, so the packet gets pts 0 (ticks are coarser than a microsecond).
        """
        us = max(math.ceil(pts * self.time_base * 1_000_000) - self.container_start_us, 0)
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def copy_span(self, start: float, end: float, fps: float) -> tuple[int, int, int]:
        """(first, count, end_pts) of the packets to copy for the clip [start, end) in seconds.

        `first` is the decode index of the last keyframe at or before `start` (half a frame of
        tolerance for rounded timestamps; the first keyframe if none is). The copy is the
        `count` packets from there in decode order: the shortest run holding every frame before
        `end` that is closed in presentation order (no later packet shows an earlier frame).
        With B-frames a frame before `end` follows its anchor from after `end` in decode order,
        so the file may hold a few frames past `end` (within one mini-GOP), but never a gap.
        `end_pts` is the pts just after the file's last frame.
        """
        tb = self.time_base
        rate = Fraction(fps).limit_denominator(1_000_000)
        half = 1 / (2 * rate * tb)  # half a frame, in ticks
        a_pts = self.first_pts + Fraction(start).limit_denominator(1_000_000) / tb
        b_lim = self.first_pts + Fraction(end).limit_denominator(1_000_000) / tb - half
        k = max(bisect.bisect_right(self._key_pts, a_pts + half) - 1, 0)
        first = self._key_index[k]
        pts, suffix_min = self.pts, self._suffix_min
        # the last decode index with pts < b_lim: suffix_min is non-decreasing
        last = max(bisect.bisect_left(suffix_min, b_lim) - 1, first)
        top = max(range(first, last + 1), key=pts.__getitem__)
        j = last
        while j + 1 < len(pts) and pts[top] > suffix_min[j + 1]:
            j += 1
            if pts[j] > pts[top]:
                top = j
        end_pts = pts[top] + (self.duration[top] or round(1 / (rate * tb)))
        return first, j - first + 1, end_pts


def read_packets(src: str | Path) -> VideoPackets:
    """Demux the first video stream of `src` once (no decoding) and index its packets."""
    with av.open(str(src)) as c:
        if not c.streams.video:
            raise ValueError(f"{src}: no video stream")
        stream = c.streams.video[0]
        pts, dur, key = [], [], []
        for pkt in c.demux(stream):
            if pkt.pts is None:  # flush packets, or a container without pts
                continue
            pts.append(pkt.pts)
            dur.append(pkt.duration or 0)
            key.append(bool(pkt.is_keyframe))
        tb = stream.time_base
        container_start = c.start_time or 0
    if not pts:
        raise ValueError(f"{src}: the video stream has no packets")
    if not any(key):
        raise ValueError(f"{src}: the video stream has no keyframe")
    return VideoPackets(tb, min(pts), container_start, pts, dur, key)


@dataclass(frozen=True)
class CopyCut:
    """One stream-copied clip file and the span of source it really holds (seconds)."""

    path: Path
    start: float  # requested clip start (source seconds, frame start / fps)
    end: float  # requested clip end, exclusive
    file_start: float  # source time of the file's first frame: the keyframe at/before `start`
    file_end: float  # source time just after the file's last frame
    frames: int  # video frames in the file

    @property
    def start_shift(self) -> float:
        """Seconds the file starts before the clip (>= 0: `start - file_start`)."""
        return round(self.start - self.file_start, 6)

    @property
    def end_shift(self) -> float:
        """Seconds the file runs past the clip's end (>= 0: `file_end - end`)."""
        return round(self.file_end - self.end, 6)


def _probe_copy(path: Path) -> tuple[int, float, int]:
    """(video packets, seconds from first frame to the end of the last, smallest pts) of a file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts, ends = [], []
        for pkt in c.demux(s):
            if pkt.pts is None:
                continue
            pts.append(pkt.pts)
            ends.append(pkt.pts + (pkt.duration or 0))
        if not pts:
            return 0, 0.0, 0
        return len(pts), float((max(ends) - min(pts)) * s.time_base), min(pts)


def cut_copy(
    src: str | Path,
    ranges: list[tuple[int, int]],
    fps: float,
    out_dir: str | Path,
    audio: bool = True,
    timeout: float | None = None,
    packets: VideoPackets | None = None,
) -> list[CopyCut]:
    """Stream-copy one mp4 per frame range [start, end) of `src`; results in `ranges` order.

    No re-encoding: each file starts on the last keyframe at or before its clip's start (so no
    frame of the clip is lost) and its first decoded frame is that keyframe. It ends after the
    clip's last frame, a few frames later when B-frames force it (`VideoPackets.copy_span`).
    Ranges may overlap (one ffmpeg call per clip). The keyframes come from one demux of `src`
    (`packets` may pass it in). Every file is checked after writing: its frame count and span
    must be the ones planned from the source's packets, else RuntimeError.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if packets is None:
        packets = read_packets(src)
    frame = 1.0 / fps
    cuts = []
    for n, (a, b) in enumerate(ranges):
        if b <= a or a < 0:
            raise ValueError(f"bad frame range [{a}, {b})")
        start, end = a / fps, b / fps
        first, count, end_pts = packets.copy_span(start, end, fps)
        file_start = packets.seconds(packets.pts[first])
        file_end = packets.seconds(end_pts)
        path = out_dir / f"clip_{n:05d}.mp4"
        ss = packets.seek_arg(packets.pts[first])
        base = ["-y", "-ss", ss, "-i", str(src), "-map", "0:v:0"]
        if audio:
            base += ["-map", "0:a:0?"]
        # -frames:v: exactly the planned packets; -t: where audio stops
        base += ["-c", "copy", "-frames:v", str(count), "-t", f"{file_end - file_start:.6f}"]
        tail = ["-movflags", "+faststart", str(path)]
        run_ffmpeg([*base, *tail], timeout=timeout)
        got, span, min_pts = _probe_copy(path)
        if min_pts < 0:  # the keyframe landed before 0 and an edit list hides it: shift instead
            run_ffmpeg([*base, "-avoid_negative_ts", "make_zero", *tail], timeout=timeout)
            got, span, min_pts = _probe_copy(path)
        if got != count or abs(span - (file_end - file_start)) > frame / 2:
            raise RuntimeError(
                f"stream copy of frames [{a}, {b}) wrote {got} frames over {span:.3f} s, "
                f"expected {count} over {file_end - file_start:.3f} s"
            )
        cuts.append(CopyCut(path, start, end, file_start, file_start + span, count))
    return cuts


def boundary_shift_summary(clips: Iterable[Any]) -> dict[str, float | int]:
    """Boundary shifts of copy-mode clips: count, mean and max of `start_shift` (seconds).

    Takes `Clip`s (their `meta["start_shift"]`, `meta["end_shift"]`, as CutStage writes them in
    copy mode; clips without them are skipped) or `CopyCut`s. `end_mean`/`end_max` are the
    same for the end (seconds the file runs past the clip).
    """
    starts, ends = [], []
    for c in clips:
        if isinstance(c, CopyCut):
            starts.append(c.start_shift)
            ends.append(c.end_shift)
            continue
        meta = getattr(c, "meta", None) or {}
        if "start_shift" in meta:
            starts.append(float(meta["start_shift"]))
            ends.append(float(meta.get("end_shift", 0.0)))
    if not starts:
        return {"count": 0, "mean": 0.0, "max": 0.0, "end_mean": 0.0, "end_max": 0.0}
    return {
        "count": len(starts),
        "mean": round(sum(starts) / len(starts), 6),
        "max": round(max(starts), 6),
        "end_mean": round(sum(ends) / len(ends), 6),
        "end_max": round(max(ends), 6),
    }
