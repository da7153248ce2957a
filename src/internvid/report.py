"""`internvid report DIR`: one self-contained HTML page (inline SVG plots, no network) about a run."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import logging
import math
import random
import tarfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"  # default file name, inside the run folder

# (anchor id, heading) of every section, in page order
SECTIONS = (
    ("summary", "Summary"),
    ("lengths", "Clip duration and caption length"),
    ("scores", "Score distributions"),
    ("videos", "Clips per video and source videos"),
    ("failures", "Failures"),
    ("samples", "Sample clips"),
    ("throughput", "Throughput per stage"),
)

INF = math.inf
# clip duration buckets in seconds, [lo, hi) (SPEC: mean 11.7 s, 85% of clips under 10 s)
DURATION_BUCKETS = ((0, 2), (2, 5), (5, 10), (10, 20), (20, 60), (60, INF))
PAPER_DURATION_MEAN = 11.7  # seconds, InternVid paper
PAPER_DURATION_UNDER_10 = 0.85  # share of clips under 10 s, InternVid paper
# caption length buckets in words, [lo, hi) (SPEC: mean 17.6; 34% under 10, 55% 10-20)
CAPTION_BUCKETS = ((0, 10), (10, 20), (20, 30), (30, INF))
CAPTION_LABELS = ("<10 words", "10-20 words", "20-30 words", "30+ words")  # as the paper says
PAPER_CAPTION_MEAN = 17.6  # words, InternVid paper
PAPER_CAPTION_SHARES = {0: 0.34, 1: 0.55}  # bucket index -> share of captions, InternVid paper
CAPTION_PRIORITY = ("fused", "release", "coarse")  # the caption a clip is counted by
# score name -> (what it is, fixed histogram range or None for the data's min..max)
SCORE_INFO: dict[str, tuple[str, tuple[float, float] | None]] = {
    "viclip_sim": ("ViCLIP video-caption cosine similarity", None),
    "viclip_sim_pct": ("share of the shard's other captions the clip's caption beats", (0.0, 1.0)),
    "umt": ("UMT video-text similarity (from the metadata)", None),
    "clipscore": ("CLIP ViT-L/14 cosine of the middle frame and the caption (raw)", None),
    "aesthetic": ("LAION aesthetic predictor, max over 4 frames", None),
    "motion": ("mean absolute luma change per frame (0-255, at width 256)", None),
    "frozen": ("fraction of frames with no change", (0.0, 1.0)),
    "text_overlay": ("largest fraction of the frame covered by text", (0.0, 1.0)),
}
SCORE_BINS = 10  # bars of every score histogram
# clips per video buckets, [lo, hi)
CLIPS_PER_VIDEO_BUCKETS = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 10), (10, 20), (20, 50))
CLIPS_PER_VIDEO_BUCKETS += ((50, INF),)
# short side of the source videos in pixels, [lo, hi), with the label shown
SHORT_SIDE_BUCKETS = (
    (0, 360, "<360p"),
    (360, 480, "360p"),
    (480, 720, "480p"),
    (720, 1080, "720p"),
    (1080, 1440, "1080p"),
    (1440, 2160, "1440p"),
    (2160, INF, "2160p+"),
)
MAX_CATEGORIES = 12  # bars of a categorical chart; the rest are summed into "other"
MAX_LABEL = 36  # characters of a category label before it is shortened
MAX_FAILURE_ROWS = 50  # failures listed one by one
MAX_MESSAGE = 300  # characters of a failure message shown
THUMB_WIDTH = 256  # pixels, width of the frames in the sample grid
JPEG_QUALITY = 80  # of the embedded frames
MAX_DECODE_FRAMES = 3000  # frames decoded after a seek before giving up on the middle frame
CLIP_COLUMNS = (
    "clip_id",
    "video_id",
    "start",
    "end",
    "duration",
    "source",
    "captions",
    "scores",
    "meta",
    "status",
    "shard",
)  # columns of clips.parquet the report reads (frame_captions can be large: not read)

# SVG chart geometry, pixels
CHART_W = 640  # width of every chart
CHART_H = 240  # plot area height of a vertical bar chart
ROW_H = 22  # row height of a horizontal bar chart
MARGIN = 12  # outer margin

# No script, no fetch: everything this page shows is inside it. The policy makes a browser
# refuse any load that slipped in; images may only be data: URIs.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:24px;margin:16px 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:1px solid #d5d9e0;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
nav a{margin-right:12px}
table{border-collapse:collapse;margin:8px 0;background:#fff}
td,th{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.missing{color:#8a5a00;background:#fff6e0;border:1px solid #f0d89a;padding:6px 10px}
.notes li{color:#8a1c1c;font-weight:600}
.ref{color:#555}
figure.plot{margin:10px 0;background:#fff;border:1px solid #d5d9e0;padding:6px;
display:inline-block}
figure.plot figcaption{font-size:12px;color:#444;max-width:640px}
svg.chart text{font:11px system-ui,sans-serif;fill:#333}
svg.chart .bar{fill:#4c78a8}svg.chart .grid{stroke:#e3e6eb}svg.chart .axis{stroke:#888}
svg.chart .refmark{stroke:#d62728;stroke-width:2;stroke-dasharray:5 3}
.grid-samples{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.card{margin:0;background:#fff;border:1px solid #d5d9e0;padding:6px}
.card img{display:block;width:100%;height:auto;background:#222}
.card .caption{margin:6px 0 2px;font-size:13px}
.card .meta,.card .other{font-size:11px;color:#555;margin:2px 0;overflow-wrap:anywhere}
.placeholder{display:flex;align-items:center;justify-content:center;aspect-ratio:4/3;
background:#e9ebef;color:#666;font-size:12px;text-align:center;padding:8px}
pre{background:#fff;border:1px solid #d5d9e0;padding:8px;overflow:auto;max-height:400px}
"""


# ---------------------------------------------------------------- small HTML / SVG helpers


def esc(value: Any) -> str:
    """Text or attribute value, HTML-escaped (quotes too)."""
    return html.escape(str(value), quote=True)


def _fmt(x: float | None, digits: int = 3) -> str:
    """A number for people: integers as such, else `digits` significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 else f"{x:.2e}"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "-"


def _short(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _nice_step(top: float, ticks: int = 4) -> float:
    """A 1/2/5 x 10^k step that splits 0..top into about `ticks` parts."""
    if top <= 0:
        return 1.0
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int] | None = None
) -> str:
    """An HTML table; cells are escaped; columns in `numeric` are right-aligned."""
    numeric = numeric or set()
    head = "".join(
        f"<th{' class=n' if i in numeric else ''}>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if i in numeric else ''}>{esc(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def _figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="plot">{svg}{cap}</figure>'


def svg_vbars(
    plot: str,
    labels: Sequence[str],
    counts: Sequence[float],
    *,
    title: str,
    x_title: str,
    y_title: str = "clips",
    refs: dict[int, float] | None = None,
    edges: Sequence[str] | None = None,
) -> str:
    """A vertical bar chart (histogram) as inline SVG: one `rect.bar` per label, zero bars too.

    `refs` maps a bar index to a reference share of the total (drawn as a dashed mark);
    `edges` (one more than the bars) are written at the bar boundaries instead of the labels.
    """
    n = len(labels)
    total = float(sum(counts))
    refs = refs or {}
    tops = [*counts, *(s * total for s in refs.values())]
    step = max(1.0, _nice_step(max(tops, default=0) or 1))  # counts: whole-number ticks
    ymax = step * math.ceil((max(tops, default=0) or 1) / step)
    left, top_pad = 48, 36
    right = 2 * MARGIN  # room for the last edge label
    slot = (CHART_W - left - right) / max(n, 1)
    shown = edges if edges is not None else labels
    slanted = max((len(s) for s in shown), default=0) * 6.5 > slot * (1.9 if edges else 0.95)
    bottom = 74 if slanted else 40
    height = top_pad + CHART_H + bottom
    y0 = top_pad + CHART_H

    def y(v: float) -> float:
        return y0 - CHART_H * v / ymax

    parts = [
        f'<svg class="chart" data-plot="{esc(plot)}" width="{CHART_W}" height="{height}" '
        f'viewBox="0 0 {CHART_W} {height}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{left}" y="16" font-weight="600">{esc(title)}</text>',
    ]
    t = 0.0
    while t <= ymax + 1e-9:
        parts.append(
            f'<line class="grid" x1="{left}" x2="{CHART_W - right}" y1="{y(t):.1f}" '
            f'y2="{y(t):.1f}"/><text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">'
            f"{esc(_fmt(t))}</text>"
        )
        t += step
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        x = left + i * slot + slot * 0.12
        w = slot * 0.76
        h = y0 - y(count)
        tip = f"{label}: {_fmt(count)} ({_pct(count, total)})"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y0 - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'data-label="{esc(label)}" data-count="{esc(_fmt(count))}"><title>{esc(tip)}</title>'
            "</rect>"
        )
        if count:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="{y0 - h - 3:.1f}" text-anchor="middle">'
                f"{esc(_fmt(count))}</text>"
            )
        cx = x + w / 2
        if edges is None and slanted:
            parts.append(
                f'<text x="{cx:.1f}" y="{y0 + 12}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {y0 + 12})">{esc(label)}</text>'
            )
        elif edges is None:
            parts.append(
                f'<text x="{cx:.1f}" y="{y0 + 14}" text-anchor="middle">{esc(label)}</text>'
            )
        if i in refs:
            ry = y(refs[i] * total)
            parts.append(
                f'<line class="refmark" x1="{x - 2:.1f}" x2="{x + w + 2:.1f}" y1="{ry:.1f}" '
                f'y2="{ry:.1f}"><title>{esc(f"paper: {refs[i]:.0%} of captions")}</title></line>'
            )
    for i, text in enumerate(edges or []):
        ex = left + i * slot
        parts.append(
            f'<line class="axis" x1="{ex:.1f}" x2="{ex:.1f}" y1="{y0}" y2="{y0 + 4}"/>'
            + (
                f'<text x="{ex:.1f}" y="{y0 + 12}" text-anchor="end" '
                f'transform="rotate(-35 {ex:.1f} {y0 + 12})">{esc(text)}</text>'
                if slanted
                else f'<text x="{ex:.1f}" y="{y0 + 15}" text-anchor="middle">{esc(text)}</text>'
            )
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{CHART_W - right}" y1="{y0}" y2="{y0}"/>'
        f'<text x="{(left + CHART_W) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        f"{esc(x_title)}</text>"
        f'<text x="12" y="{y0 - CHART_H / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {y0 - CHART_H / 2:.0f})">{esc(y_title)}</text></svg>'
    )
    return "".join(parts)


def svg_hbars(
    plot: str, labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = ""
) -> str:
    """A horizontal bar chart (categories) as inline SVG: one `rect.bar` per label."""
    n = len(labels)
    shown = [_short(s) for s in labels]
    left = min(16 + 6.6 * max((len(s) for s in shown), default=4), CHART_W / 2)
    right = 70
    top_pad = 26
    height = top_pad + ROW_H * n + MARGIN
    vmax = max(values, default=0) or 1
    total = float(sum(values))
    width = CHART_W - left - right
    parts = [
        f'<svg class="chart" data-plot="{esc(plot)}" width="{CHART_W}" height="{height}" '
        f'viewBox="0 0 {CHART_W} {height}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{MARGIN}" y="16" font-weight="600">{esc(title)}</text>',
    ]
    for i, (label, short, v) in enumerate(zip(labels, shown, values, strict=True)):
        yy = top_pad + i * ROW_H
        w = width * v / vmax
        value = f"{_fmt(v)}{unit}"
        tip = f"{label}: {value} ({_pct(v, total)})"
        parts.append(
            f'<text x="{left - 6:.1f}" y="{yy + ROW_H * 0.65:.1f}" text-anchor="end">'
            f"{esc(short)}</text>"
            f'<rect class="bar" x="{left:.1f}" y="{yy + 3:.1f}" width="{w:.1f}" '
            f'height="{ROW_H - 6}" data-label="{esc(label)}" data-count="{esc(_fmt(v))}">'
            f"<title>{esc(tip)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{yy + ROW_H * 0.65:.1f}">{esc(value)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left:.1f}" x2="{left:.1f}" y1="{top_pad}" '
        f'y2="{top_pad + ROW_H * n}"/></svg>'
    )
    return "".join(parts)


def _top_categories(counter: Counter, limit: int = MAX_CATEGORIES) -> tuple[list[str], list[int]]:
    """The `limit` most common categories (ties by name), the rest summed as "other"."""
    items = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    head = items
    if len(items) > limit:
        head = [*items[: limit - 1], ("other", sum(v for _, v in items[limit - 1 :]))]
    return [str(k) for k, _ in head], [int(v) for _, v in head]


def bucket_counts(values: Sequence[float], buckets: Sequence[tuple[float, float]]) -> list[int]:
    """How many values fall in each [lo, hi) bucket (below the first: first; NaN: none)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    edges = np.array([b[0] for b in buckets] + [buckets[-1][1]], dtype=np.float64)
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(buckets) - 1)
    return [int(c) for c in np.bincount(idx, minlength=len(buckets))]


def _bucket_labels(
    buckets: Sequence[tuple[float, float]], unit: str = "", integer: bool = False
) -> list[str]:
    """Labels of [lo, hi) buckets: "2-5 s", "60+ s"; integer buckets as "5-9", "1"."""
    out = []
    for lo, hi in buckets:
        if hi == INF:
            out.append(f"{_fmt(lo)}+{unit}")
        elif integer and hi - lo == 1:
            out.append(f"{_fmt(lo)}{unit}")
        elif integer:
            out.append(f"{_fmt(lo)}-{_fmt(hi - 1)}{unit}")
        else:
            out.append(f"{_fmt(lo)}-{_fmt(hi)}{unit}")
    return out


# ---------------------------------------------------------------- reading the run folder


@dataclass
class RunData:
    """What the report reads from a run folder; a None field comes with a problem text."""

    run_dir: Path
    clips: Any = None  # pyarrow Table of CLIP_COLUMNS, or None
    videos: Any = None  # pyarrow Table of videos.parquet, or None
    failures: list[dict[str, Any]] | None = None
    stats: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    config_text: str | None = None
    problems: dict[str, str] = field(default_factory=dict)  # file name -> what is wrong


def _problem(data: RunData, name: str, e: BaseException | None = None) -> None:
    if e is None:
        data.problems[name] = f"{name} is missing from {data.run_dir}"
    else:
        data.problems[name] = f"{name} could not be read: {type(e).__name__}: {e}"
        log.warning("report: %s", data.problems[name])


def load_run(run_dir: Path) -> RunData:
    """Read every input of the report that exists; note what is missing or broken."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    data = RunData(run_dir)
    path = run_dir / "clips.parquet"
    if path.is_file():
        try:
            names = set(pq.read_schema(path).names)
            data.clips = pq.read_table(path, columns=[c for c in CLIP_COLUMNS if c in names])
        except (OSError, pa.ArrowException) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "videos.parquet"
    if path.is_file():
        try:
            data.videos = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "failures.jsonl"
    if path.is_file():
        try:
            rows, bad = [], 0
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        bad += 1
                        continue
                    if isinstance(row, dict):
                        rows.append(row)
            data.failures = rows
            if bad:
                data.problems[path.name] = f"{bad} line(s) of failures.jsonl are not JSON"
        except (OSError, UnicodeDecodeError) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "stats.json"
    if path.is_file():
        try:
            stats = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(stats, dict):
                raise ValueError("not a JSON object")
            data.stats = stats
        except (OSError, ValueError) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    path = run_dir / "config.yaml"
    if path.is_file():
        try:
            data.config_text = path.read_text(encoding="utf-8")
            config = yaml.safe_load(data.config_text)
            data.config = config if isinstance(config, dict) else None
        except (OSError, ValueError, yaml.YAMLError) as e:
            _problem(data, path.name, e)
    else:
        _problem(data, path.name)
    return data


def _column(table: Any, name: str) -> list[Any]:
    return (
        table.column(name).to_pylist() if table is not None and name in table.column_names else []
    )


def _map_values(table: Any, column: str) -> dict[str, tuple[Any, Any]]:
    """A map column as {key: (row indices (numpy), values (pyarrow array))}, vectorised."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if table is None or column not in table.column_names or table.num_rows == 0:
        return {}
    arr = table.column(column).combine_chunks()
    if not isinstance(arr, pa.MapArray):
        return {}
    offsets = arr.offsets.to_numpy(zero_copy_only=False)
    valid = ~arr.is_null().to_numpy(zero_copy_only=False)
    lo, hi = int(offsets[0]), int(offsets[-1])
    owner = np.repeat(np.arange(len(arr)), np.diff(offsets))  # row of every map entry
    keep = valid[owner]  # a null row may still own entries: skip them
    rows = owner[keep]
    keys = arr.keys.slice(lo, hi - lo).filter(pa.array(keep))
    values = arr.items.slice(lo, hi - lo).filter(pa.array(keep))
    out: dict[str, tuple[Any, Any]] = {}
    for key in pc.unique(keys).to_pylist():
        sel = pc.fill_null(pc.equal(keys, key), False)
        out[key] = (rows[sel.to_numpy(zero_copy_only=False)], values.filter(sel))
    return out


def _main_captions(table: Any) -> list[str | None]:
    """Per clip, the caption it is counted by: fused > release > coarse (non-empty), else None."""
    n = table.num_rows if table is not None else 0
    found: list[str | None] = [None] * n
    by_key = _map_values(table, "captions")
    for kind in reversed(CAPTION_PRIORITY):
        if kind not in by_key:
            continue
        rows, values = by_key[kind]
        for r, v in zip(rows.tolist(), values.to_pylist(), strict=True):
            if v and v.strip():
                found[int(r)] = v
    return found


def _words(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------- middle frames


def _frame_at(src: str | io.BytesIO, t: float) -> Any:
    """The decoded RGB frame shown at `t` seconds from the file's start (display-rotated), or None."""
    import av
    import numpy as np

    with av.open(src, metadata_errors="ignore") as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = float(stream.time_base) if stream.time_base else 0.0
        first = float(stream.start_time * stream.time_base) if stream.start_time and base else 0.0
        target = first + max(t, 0.0)
        rate = float(stream.average_rate or 25)
        if t > 0 and base:
            container.seek(int(target / base), stream=stream, backward=True)
        chosen = None
        for i, frame in enumerate(container.decode(stream)):
            chosen = frame
            if frame.time is None or frame.time >= target - 0.5 / rate or i >= MAX_DECODE_FRAMES:
                break
        if chosen is None:
            return None
        img = chosen.to_ndarray(format="rgb24")
        turns = round((getattr(chosen, "rotation", 0) or 0) / 90) % 4
        return np.ascontiguousarray(np.rot90(img, turns)) if turns else img


def _jpeg_uri(rgb: Any) -> tuple[str, int, int]:
    """A frame scaled to THUMB_WIDTH wide as a JPEG data URI, with its size."""
    import cv2

    h, w = rgb.shape[:2]
    nw = min(THUMB_WIDTH, w)
    nh = max(1, round(h * nw / w))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA) if nw != w else rgb
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii"), nw, nh


@dataclass
class Thumb:
    """A sample clip's middle frame (or why there is none)."""

    uri: str | None = None  # data: URI of the JPEG
    width: int = 0
    height: int = 0
    origin: str = ""  # where the frame came from, or why it is missing


def _clip_offset(row: dict[str, Any]) -> float:
    """Seconds into the clip file of the clip's middle (copy mode files start earlier)."""
    try:
        meta = json.loads(row.get("meta") or "{}")
    except ValueError:
        meta = {}
    shift = meta.get("start_shift") if isinstance(meta, dict) else None
    duration = float(row.get("duration") or (row["end"] - row["start"]))
    return float(shift or 0.0) + duration / 2


def _decode_thumb(src: str | io.BytesIO, t: float, origin: str) -> Thumb | None:
    import av

    try:
        rgb = _frame_at(src, t)
        if rgb is None:
            return None
        uri, w, h = _jpeg_uri(rgb)
        return Thumb(uri, w, h, origin)
    except (av.error.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as e:
        log.debug("report: no frame from %s at %.2f s: %s", origin, t, e)
        return None


def sample_thumbs(run_dir: Path, rows: list[dict[str, Any]], videos: Any) -> list[Thumb]:
    """Middle frames of `rows`: from the clip mp4 in its shard tar, else from the source video."""
    from internvid.io.shards import shard_name

    paths = dict(zip(_column(videos, "id"), _column(videos, "path"), strict=True))
    out: list[Thumb] = [Thumb() for _ in rows]
    by_shard: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        if row.get("shard") is not None and row.get("status") != "split":
            by_shard.setdefault(int(row["shard"]), []).append(i)
    reasons = ["no clip file (cut mode none)"] * len(rows)
    for shard, idx in sorted(by_shard.items()):
        tar_path = run_dir / "shards" / f"{shard_name(shard)}.tar"
        if not tar_path.is_file():
            for i in idx:
                reasons[i] = f"shard {tar_path.name} missing"
            continue
        try:
            with tarfile.open(tar_path) as tar:
                for i in idx:
                    member = f"{rows[i]['clip_id']}.mp4"
                    try:
                        f = tar.extractfile(member)
                    except KeyError:
                        f = None
                    if f is None:
                        reasons[i] = f"{member} not in {tar_path.name}"
                        continue
                    thumb = _decode_thumb(
                        io.BytesIO(f.read()), _clip_offset(rows[i]), f"{tar_path.name}: {member}"
                    )
                    if thumb is None:
                        reasons[i] = f"{member} in {tar_path.name} does not decode"
                    else:
                        out[i] = thumb
        except (OSError, tarfile.TarError) as e:
            log.warning("report: cannot read %s: %s", tar_path, e)
            for i in idx:
                reasons[i] = f"{tar_path.name} unreadable"
    for i, row in enumerate(rows):
        if out[i].uri:
            continue
        src = paths.get(row.get("video_id")) or row.get("source") or ""
        middle = (float(row["start"]) + float(row["end"])) / 2
        if src and Path(src).is_file():
            thumb = _decode_thumb(src, middle, f"source video at {middle:.2f} s")
            if thumb is not None:
                out[i] = thumb
                continue
            reasons[i] += "; source video does not decode"
        else:
            reasons[i] += "; source video not found"
        out[i] = Thumb(origin=reasons[i])
    return out


# ---------------------------------------------------------------- sections


def _cfg(data: RunData, section: str, key: str) -> Any:
    """config.yaml's `section.key`, or None."""
    part = (data.config or {}).get(section)
    return part.get(key) if isinstance(part, dict) else None


def _section(anchor: str, body: str) -> str:
    title = dict(SECTIONS)[anchor]
    number = [a for a, _ in SECTIONS].index(anchor) + 1
    return f'<section id="{anchor}"><h2>{number}. {esc(title)}</h2>{body}</section>'


def _summary(data: RunData) -> str:
    stats, clips, videos = data.stats or {}, data.clips, data.videos
    rows: list[tuple[str, str]] = []
    durations = _column(clips, "duration")
    clip_seconds = sum(durations) if clips is not None else stats.get("clip_seconds")
    video_seconds = stats.get("video_seconds")
    if video_seconds is None and videos is not None:
        video_seconds = sum(d or 0.0 for d in _column(videos, "duration"))

    def hours(s: float | None) -> str:
        return "-" if s is None else f"{s / 3600:.3f} h ({_fmt(s, 4)} s)"

    rows.append(("videos (inputs)", _fmt(stats.get("videos"))))
    rows.append(
        ("videos probed (videos.parquet)", _fmt(videos.num_rows if videos is not None else None))
    )
    with_clips = len(set(_column(clips, "video_id"))) if clips is not None else None
    rows.append(
        (
            "videos with clips",
            _fmt(with_clips if with_clips is not None else stats.get("videos_ok")),
        )
    )
    rows.append(("clips", _fmt(clips.num_rows if clips is not None else stats.get("clips"))))
    rows.append(("clip hours", hours(clip_seconds)))
    rows.append(("source video hours", hours(video_seconds)))
    if durations:
        rows.append(("mean clip duration", f"{sum(durations) / len(durations):.2f} s"))
    nfail = len(data.failures) if data.failures is not None else stats.get("failures")
    rows.append(("failures", _fmt(nfail)))
    wall = stats.get("wall_seconds")
    rows.append(("wall time", "-" if wall is None else f"{wall:.1f} s ({wall / 3600:.3f} h)"))
    if "shards" in stats:
        rows.append(("shards", f"{stats['shards']} ({stats.get('shards_resumed', 0)} resumed)"))
    scores = _cfg(data, "score", "scores")
    settings = [
        ("cut mode", _cfg(data, "cut", "mode")),
        ("shot detector", _cfg(data, "split", "detector")),
        ("caption models", _cfg(data, "caption", "models")),
        ("scores", ", ".join(map(str, scores)) if isinstance(scores, list) and scores else "none"),
    ]
    if data.config is not None:
        rows += [(k, str(v)) for k, v in settings if v is not None]
    parts = [_table(("", "value"), rows)]
    notes = stats.get("notes") or []
    if notes:
        items = "".join(f"<li>{esc(n)}</li>" for n in notes)
        parts.insert(0, f'<p><strong>Notes</strong></p><ul class="notes">{items}</ul>')
    for name in ("stats.json", "config.yaml", "clips.parquet", "videos.parquet", "failures.jsonl"):
        if name in data.problems:
            parts.append(_missing(data.problems[name]))
    if data.config_text is not None:
        parts.append(
            f"<details><summary>config.yaml</summary><pre>{esc(data.config_text)}</pre></details>"
        )
    return _section("summary", "".join(parts))


def _lengths(data: RunData) -> str:
    clips = data.clips
    if clips is None:
        return _section("lengths", _missing(data.problems.get("clips.parquet", "no clips")))
    parts = ["<h3>Clip duration</h3>"]
    durations = [float(d) for d in _column(clips, "duration")]
    if durations:
        counts = bucket_counts(durations, DURATION_BUCKETS)
        mean = sum(durations) / len(durations)
        under = sum(d < 10 for d in durations) / len(durations)
        cap = (
            f"this run: {len(durations)} clips, mean {mean:.1f} s, {under:.0%} under 10 s. "
            f'<span class="ref">InternVid paper: mean {PAPER_DURATION_MEAN} s, '
            f"{PAPER_DURATION_UNDER_10:.0%} under 10 s.</span>"
        )
        svg = svg_vbars(
            "duration",
            _bucket_labels(DURATION_BUCKETS, " s"),
            counts,
            title="Clip duration",
            x_title="duration (seconds)",
        )
        parts.append(_figure(svg, cap))
    else:
        parts.append(_missing("no clips in clips.parquet"))
    parts.append("<h3>Caption length</h3>")
    main = _main_captions(clips)
    words = [_words(c) for c in main if c]
    if words:
        counts = bucket_counts(words, CAPTION_BUCKETS)
        mean = sum(words) / len(words)
        shares = ", ".join(
            f"{_pct(c, len(words))} {label}"
            for c, label in zip(counts, list(CAPTION_LABELS), strict=True)
        )
        cap = (
            f"this run: {len(words)} captioned clips of {clips.num_rows} "
            f"(caption: {' &gt; '.join(CAPTION_PRIORITY)}), mean {mean:.1f} words; {esc(shares)}. "
            f'<span class="ref">InternVid paper (dashed marks): mean {PAPER_CAPTION_MEAN} words, '
            f"34% under 10, 55% 10-20.</span>"
        )
        svg = svg_vbars(
            "caption_words",
            list(CAPTION_LABELS),
            counts,
            title="Caption length",
            x_title="words per caption",
            refs=PAPER_CAPTION_SHARES,
        )
        parts.append(_figure(svg, cap))
        by_kind = _map_values(clips, "captions")
        rows = []
        for kind, (_, values) in sorted(by_kind.items()):
            nonempty = [_words(v) for v in values.to_pylist() if v and v.strip()]
            if nonempty:
                rows.append((kind, len(nonempty), f"{sum(nonempty) / len(nonempty):.1f}"))
        parts.append(_table(("caption", "clips", "mean words"), rows, {1, 2}))
    else:
        models = _cfg(data, "caption", "models")
        why = f" (caption.models: {models})" if models else ""
        parts.append(_missing(f"no captions in this run{why}"))
    return _section("lengths", "".join(parts))


def _score_order(names: list[str]) -> list[str]:
    known = [n for n in SCORE_INFO if n in names]
    return known + sorted(n for n in names if n not in SCORE_INFO)


def _edge_text(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def score_histogram(values: list[float], name: str) -> tuple[list[str], list[str], list[int]]:
    """SCORE_BINS equal bins over the score's fixed range, else the data's min..max.

    Returns the bins' labels ("a to b"), the SCORE_BINS + 1 edges as text, and the counts.
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    fixed = SCORE_INFO.get(name, ("", None))[1]
    if fixed is not None:
        lo, hi = fixed
        v = np.clip(v, lo, hi)
    elif len(v):
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
    else:
        lo, hi = 0.0, 1.0
    counts, edges = np.histogram(v, bins=SCORE_BINS, range=(lo, hi))
    # enough decimals to tell neighbouring edges apart
    decimals = min(6, max(0, 1 - math.floor(math.log10(max(hi - lo, 1e-12) / SCORE_BINS))))
    texts = [_edge_text(float(e), decimals) for e in edges]
    labels = [f"{texts[i]} to {texts[i + 1]}" for i in range(SCORE_BINS)]
    return labels, texts, [int(c) for c in counts]


def _scores(data: RunData) -> str:
    import numpy as np

    clips = data.clips
    if clips is None:
        return _section("scores", _missing(data.problems.get("clips.parquet", "no clips")))
    by_key = _map_values(clips, "scores")
    if not by_key:
        return _section("scores", _missing("no scores in clips.parquet"))
    parts = []
    for name in _score_order(list(by_key)):
        _, values = by_key[name]
        v = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        v = v[np.isfinite(v)]
        if not len(v):
            parts.append(_missing(f"{name}: no finite values"))
            continue
        labels, edges, counts = score_histogram(v.tolist(), name)
        what = SCORE_INFO.get(name, ("", None))[0]
        cap = (
            f"{esc(what)}{': ' if what else ''}{len(v)} clips, "
            f"{clips.num_rows - len(v)} without; mean {_fmt(float(v.mean()))}, median "
            f"{_fmt(float(np.median(v)))}, min {_fmt(float(v.min()))}, max {_fmt(float(v.max()))}"
        )
        svg = svg_vbars(f"score_{name}", labels, counts, title=name, x_title=name, edges=edges)
        parts.append(_figure(svg, cap))
    return _section("scores", "".join(parts))


def _videos(data: RunData) -> str:
    clips, videos = data.clips, data.videos
    parts = ["<h3>Clips per video</h3>"]
    if clips is None:
        parts.append(_missing(data.problems.get("clips.parquet", "no clips")))
    else:
        per = Counter(_column(clips, "video_id"))
        ids = _column(videos, "id")
        for vid in ids:
            per.setdefault(vid, 0)
        if per:
            counts = bucket_counts(list(per.values()), CLIPS_PER_VIDEO_BUCKETS)
            mean = sum(per.values()) / len(per)
            where = "videos.parquet and clips.parquet" if ids else "clips.parquet only"
            cap = f"{len(per)} videos ({esc(where)}), mean {mean:.2f} clips per video"
            svg = svg_vbars(
                "clips_per_video",
                _bucket_labels(CLIPS_PER_VIDEO_BUCKETS, integer=True),
                counts,
                title="Clips per video",
                x_title="clips per video",
                y_title="videos",
            )
            parts.append(_figure(svg, cap))
        else:
            parts.append(_missing("no videos and no clips"))
    parts.append("<h3>Source videos: resolution and frame rate</h3>")
    if videos is None or videos.num_rows == 0:
        parts.append(_missing(data.problems.get("videos.parquet", "videos.parquet has no rows")))
        return _section("videos", "".join(parts))
    widths, heights = _column(videos, "width"), _column(videos, "height")
    sizes = [(w, h) for w, h in zip(widths, heights, strict=True) if w and h]
    if sizes:
        shorts = [min(w, h) for w, h in sizes]
        counts = bucket_counts(shorts, [(lo, hi) for lo, hi, _ in SHORT_SIDE_BUCKETS])
        svg = svg_vbars(
            "resolution",
            [label for _, _, label in SHORT_SIDE_BUCKETS],
            counts,
            title="Source video resolution (short side)",
            x_title="short side",
            y_title="videos",
        )
        parts.append(_figure(svg, f"{len(sizes)} videos with a known size"))
        labels, values = _top_categories(Counter(f"{w}x{h}" for w, h in sizes))
        parts.append(
            _table(("width x height", "videos"), list(zip(labels, values, strict=True)), {1})
        )
    else:
        parts.append(_missing("no video sizes in videos.parquet"))
    fps = [f for f in _column(videos, "fps") if f]
    if fps:
        labels, values = _top_categories(Counter(f"{_edge_text(float(f), 3)} fps" for f in fps))
        svg = svg_hbars("fps", labels, values, title="Source video frame rate")
        parts.append(_figure(svg, f"{len(fps)} videos with a known frame rate"))
    else:
        parts.append(_missing("no frame rates in videos.parquet"))
    codecs = Counter(c or "?" for c in _column(videos, "codec"))
    if codecs:
        labels, values = _top_categories(codecs)
        parts.append(_table(("codec", "videos"), list(zip(labels, values, strict=True)), {1}))
    return _section("videos", "".join(parts))


def _failures(data: RunData) -> str:
    stats = data.stats or {}
    parts = []
    if data.failures is not None:
        reasons = Counter(str(f.get("reason") or "?") for f in data.failures)
        stages = Counter(str(f.get("stage") or "?") for f in data.failures)
        source = "failures.jsonl"
    elif stats.get("failures_by_reason") is not None:
        reasons = Counter({str(k): int(v) for k, v in stats["failures_by_reason"].items()})
        stages = Counter()
        for st in stats.get("stages") or []:
            for _, n in (st.get("failed") or {}).items():
                stages[str(st.get("name"))] += int(n)
        source = "stats.json (failures.jsonl missing)"
        parts.append(_missing(data.problems.get("failures.jsonl", "failures.jsonl missing")))
    else:
        parts.append(_missing(data.problems.get("failures.jsonl", "failures.jsonl missing")))
        return _section("failures", "".join(parts))
    total = sum(reasons.values())
    parts.append(f"<p>{total} failed item(s), from {esc(source)}.</p>")
    if total:
        labels, values = _top_categories(reasons)
        parts.append(
            _figure(svg_hbars("failures_reason", labels, values, title="Failures by reason"))
        )
        if stages:
            labels, values = _top_categories(stages)
            parts.append(
                _figure(svg_hbars("failures_stage", labels, values, title="Failures by stage"))
            )
    if data.failures:
        rows = [
            (
                f.get("item", ""),
                f.get("stage", ""),
                f.get("reason", ""),
                _short(str(f.get("message", "")), MAX_MESSAGE),
            )
            for f in data.failures[:MAX_FAILURE_ROWS]
        ]
        more = len(data.failures) - len(rows)
        parts.append(
            f"<details><summary>failed items ({len(rows)} shown"
            f"{f', {more} more in failures.jsonl' if more > 0 else ''})</summary>"
            + _table(("item", "stage", "reason", "message"), rows)
            + "</details>"
        )
    dropped = [
        (st.get("name", ""), reason, n)
        for st in stats.get("stages") or []
        for reason, n in (st.get("dropped") or {}).items()
    ]
    if dropped:
        parts.append("<h3>Dropped by the filters (on purpose, not failures)</h3>")
        parts.append(_table(("stage", "reason", "items"), dropped, {2}))
    return _section("failures", "".join(parts))


def _samples(data: RunData, samples: int, seed: int) -> str:
    clips = data.clips
    if clips is None:
        return _section("samples", _missing(data.problems.get("clips.parquet", "no clips")))
    n = clips.num_rows
    k = max(0, min(samples, n))
    if not k:
        return _section("samples", _missing("no clips to show" if n else "no clips in this run"))
    idx = sorted(random.Random(seed).sample(range(n), k))
    rows = clips.take(idx).to_pylist()
    thumbs = sample_thumbs(data.run_dir, rows, data.videos)
    cards = []
    for row, thumb in zip(rows, thumbs, strict=True):
        clip_id = str(row.get("clip_id"))
        captions = dict(row.get("captions") or [])
        main = next((captions[k] for k in CAPTION_PRIORITY if (captions.get(k) or "").strip()), "")
        if thumb.uri:
            img = (
                f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" '
                f'alt="middle frame of {esc(clip_id)}" title="{esc(thumb.origin)}">'
            )
        else:
            img = f'<div class="placeholder">no frame: {esc(thumb.origin)}</div>'
        caption = (
            f'<p class="caption">{esc(main)}</p>'
            if main
            else '<p class="caption"><em>no caption</em></p>'
        )
        others = "".join(
            f'<p class="other"><b>{esc(kind)}:</b> {esc(text)}</p>'
            for kind, text in sorted(captions.items())
            if text and text != main
        )
        scores = dict(row.get("scores") or [])
        score_text = ", ".join(
            f"{name} {_fmt(scores[name])}" for name in _score_order(list(scores))
        )
        meta = (
            f"{esc(clip_id)} · {float(row['start']):.2f}-{float(row['end']):.2f} s "
            f"({float(row.get('duration') or 0):.2f} s)"
            + (f" · {esc(score_text)}" if score_text else "")
        )
        cards.append(
            f'<figure class="card">{img}<figcaption>{caption}{others}'
            f'<p class="meta">{meta}</p></figcaption></figure>'
        )
    head = (
        f"<p>{k} of {n} clips (seed {seed}): the middle frame of each clip, from its file in the "
        "shard when there is one, else from the source video; caption fused &gt; release &gt; "
        "coarse.</p>"
    )
    return _section("samples", head + f'<div class="grid-samples">{"".join(cards)}</div>')


def _throughput(data: RunData) -> str:
    stats = data.stats
    if stats is None:
        return _section("throughput", _missing(data.problems.get("stats.json", "no stats.json")))
    stages = [s for s in stats.get("stages") or [] if isinstance(s, dict)]
    if not stages:
        return _section("throughput", _missing("stats.json lists no stages"))
    busy = sum(float(s.get("seconds") or 0) for s in stages)
    rows = []
    for s in stages:
        sec = float(s.get("seconds") or 0)
        n_in = int(s.get("in") or 0)
        rate = f"{n_in / sec:.2f}" if sec > 0 else "-"
        rows.append(
            (
                s.get("name", ""),
                s.get("unit", ""),
                n_in,
                s.get("out", ""),
                s.get("clips_out", ""),
                sum((s.get("dropped") or {}).values()),
                sum((s.get("failed") or {}).values()),
                f"{sec:.2f}",
                rate,
                _pct(sec, busy),
            )
        )
    headers = ("stage", "unit", "in", "out", "clips out", "dropped", "failed", "seconds")
    headers += ("items in / s", "share of stage time")
    parts = [_table(headers, rows, set(range(2, 10)))]
    svg = svg_hbars(
        "stage_seconds",
        [str(s.get("name", "")) for s in stages],
        [round(float(s.get("seconds") or 0), 3) for s in stages],
        title="Seconds per stage (summed over shards and workers)",
        unit=" s",
    )
    parts.append(_figure(svg))
    wall = float(stats.get("wall_seconds") or 0)
    if wall > 0:
        videos = stats.get("videos") or 0
        seconds = stats.get("video_seconds") or 0
        parts.append(
            f"<p>Whole run: {wall:.1f} s wall, {videos / wall:.3f} videos/s, "
            f"{(stats.get('clips') or 0) / wall:.3f} clips/s, {seconds / wall:.2f} s of video "
            "per second.</p>"
        )
    return _section("throughput", "".join(parts))


# ---------------------------------------------------------------- the page


def render_report(run_dir: str | Path, samples: int = 24, seed: int = 0) -> str:
    """The report page of a run folder as one HTML string (every resource inline)."""
    from internvid import __version__

    run_dir = Path(run_dir)
    data = load_run(run_dir)
    builders = {
        "summary": lambda: _summary(data),
        "lengths": lambda: _lengths(data),
        "scores": lambda: _scores(data),
        "videos": lambda: _videos(data),
        "failures": lambda: _failures(data),
        "samples": lambda: _samples(data, samples, seed),
        "throughput": lambda: _throughput(data),
    }
    body = []
    for anchor, _ in SECTIONS:
        try:
            body.append(builders[anchor]())
        except Exception as e:  # one broken section must not cost the whole page
            log.warning("report: section %s failed: %s", anchor, e, exc_info=True)
            body.append(_section(anchor, _missing(f"this section failed: {type(e).__name__}: {e}")))
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS)
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>internvid report: {esc(run_dir.resolve().name)}</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<h1>internvid report</h1><p>{esc(run_dir.resolve())} · internvid {esc(__version__)}"
        f" · {when}</p><nav>{nav}</nav>" + "".join(body) + "</main></body></html>\n"
    )


def write_report(
    run_dir: str | Path, out: str | Path | None = None, samples: int = 24, seed: int = 0
) -> Path:
    """Write the report of `run_dir` to `out` (default DIR/report.html) atomically; return it."""
    from internvid.io.atomic import atomic_open

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir} is not a folder")
    path = Path(out) if out is not None else run_dir / REPORT_NAME
    page = render_report(run_dir, samples=samples, seed=seed)
    with atomic_open(path) as f:
        f.write(page)
    log.info("report: %s (%d KiB)", path, len(page.encode()) // 1024)
    return path


def register(app: typer.Typer) -> None:
    """Add `internvid report` to the command line."""

    @app.command("report")
    def report(
        run_dir: Annotated[
            Path, typer.Argument(metavar="DIR", help="A run's output folder (of `internvid run`).")
        ],
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="HTML file to write (default: DIR/report.html)."),
        ] = None,
        samples: Annotated[
            int, typer.Option("--samples", "-n", min=0, help="Clips in the frame grid.")
        ] = 24,
        seed: Annotated[int, typer.Option(help="Seed of the clip sample of the grid.")] = 0,
    ) -> None:
        """Write a self-contained HTML report (plots, sample frames; no network) about a run."""
        try:
            write_report(run_dir, out, samples=samples, seed=seed)
        except OSError as e:
            log.error("%s", e)
            raise typer.Exit(2) from e
