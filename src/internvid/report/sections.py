"""The report's sections, one HTML builder each, from a RunData."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from internvid.io.tables import caption_column
from internvid.records import CAPTION_PRIORITY, parse_clip_id
from internvid.report.bins import (
    INF,
    bucket_counts,
    bucket_labels,
    score_histogram,
    top_categories,
)
from internvid.report.charts import svg_hbars, svg_vbars
from internvid.report.data import (
    RunData,
    caption_columns,
    column_values,
    main_captions,
    score_arrays,
    score_info,
    score_order,
    word_count,
)
from internvid.report.fmt import edge_text, esc, fmt, pct, short
from internvid.report.thumbs import Thumb, sample_thumbs, source_thumb, video_paths

log = logging.getLogger(__name__)

# (anchor id, heading) of every section, in page order
SECTIONS = (
    ("summary", "Summary"),
    ("lengths", "Clip duration and caption length"),
    ("scores", "Score distributions"),
    ("videos", "Clips per video and source videos"),
    ("dropped", "Dropped and failed"),
    ("samples", "Sample clips"),
    ("throughput", "Throughput per stage"),
)

# clip duration buckets in seconds, [lo, hi) (SPEC: mean 11.7 s, 85% of clips under 10 s)
DURATION_BUCKETS = ((0, 2), (2, 5), (5, 10), (10, 20), (20, 60), (60, INF))
PAPER_DURATION_MEAN = 11.7  # seconds, InternVid paper
PAPER_DURATION_UNDER_10 = 0.85  # share of clips under 10 s, InternVid paper
# caption length buckets in words, [lo, hi) (SPEC: mean 17.6; 34% under 10, 55% 10-20)
CAPTION_BUCKETS = ((0, 10), (10, 20), (20, 30), (30, INF))
CAPTION_LABELS = ("<10 words", "10-20 words", "20-30 words", "30+ words")  # as the paper says
PAPER_CAPTION_MEAN = 17.6  # words, InternVid paper
PAPER_CAPTION_SHARES = {0: 0.34, 1: 0.55}  # bucket index -> share of captions, InternVid paper
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
MAX_FAILURE_ROWS = 50  # failures listed one by one
MAX_MESSAGE = 300  # characters of a failure message shown
MAX_DROPPED_VIDEO_ROWS = 200  # dropped videos listed one by one
MAX_DROPPED_THUMBS = 12  # dropped clips shown with a frame
VIDEO_STATUSES = ("ok", "dropped", "failed")  # videos.parquet's statuses, in the order shown
NOT_RECORDED = "not recorded by this run (an internvid older than the status trail)"


def table(
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


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="plot">{svg}{cap}</figure>'


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
    durations = column_values(clips, "duration")
    clip_seconds = sum(durations) if clips is not None else stats.get("clip_seconds")
    video_seconds = stats.get("video_seconds")
    if video_seconds is None and videos is not None:
        video_seconds = sum(d or 0.0 for d in column_values(videos, "duration"))

    def hours(s: float | None) -> str:
        return "-" if s is None else f"{s / 3600:.3f} h ({fmt(s, 4)} s)"

    rows.append(("videos (inputs)", fmt(stats.get("videos"))))
    if videos is not None and "status" in videos.column_names:
        status = Counter(column_values(videos, "status"))
        rows.append(("videos (videos.parquet)", fmt(videos.num_rows)))
        rows += [(f"videos {s}", fmt(status.get(s, 0))) for s in VIDEO_STATUSES]
    else:
        rows.append(
            ("videos probed (videos.parquet)", fmt(videos.num_rows if videos is not None else None))
        )
    with_clips = len(set(column_values(clips, "video_id"))) if clips is not None else None
    rows.append(
        (
            "videos with clips",
            fmt(with_clips if with_clips is not None else stats.get("videos_ok")),
        )
    )
    rows.append(("clips", fmt(clips.num_rows if clips is not None else stats.get("clips"))))
    rows.append(("clip hours", hours(clip_seconds)))
    rows.append(("source video hours", hours(video_seconds)))
    if durations:
        rows.append(("mean clip duration", f"{sum(durations) / len(durations):.2f} s"))
    nfail = len(data.failures) if data.failures is not None else stats.get("failures")
    rows.append(("failures", fmt(nfail)))
    if data.dropped is not None:
        rows.append(("dropped by rules (dropped.jsonl)", fmt(len(data.dropped))))
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
    parts = [table(("", "value"), rows)]
    notes = stats.get("notes") or []
    if notes:
        items = "".join(f"<li>{esc(n)}</li>" for n in notes)
        parts.insert(0, f'<p><strong>Notes</strong></p><ul class="notes">{items}</ul>')
    for name in ("stats.json", "config.yaml", "clips.parquet", "videos.parquet", "failures.jsonl"):
        if name in data.problems:
            parts.append(missing(data.problems[name]))
    if data.config_text is not None:
        parts.append(
            f"<details><summary>config.yaml</summary><pre>{esc(data.config_text)}</pre></details>"
        )
    return _section("summary", "".join(parts))


def _lengths(data: RunData) -> str:
    clips = data.clips
    if clips is None:
        return _section("lengths", missing(data.problems.get("clips.parquet", "no clips")))
    parts = ["<h3>Clip duration</h3>"]
    durations = [float(d) for d in column_values(clips, "duration")]
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
            bucket_labels(DURATION_BUCKETS, " s"),
            counts,
            title="Clip duration",
            x_title="duration (seconds)",
        )
        parts.append(figure(svg, cap))
    else:
        parts.append(missing("no clips in clips.parquet"))
    parts.append("<h3>Caption length</h3>")
    main = main_captions(clips)
    words = [word_count(c) for c in main if c]
    if words:
        counts = bucket_counts(words, CAPTION_BUCKETS)
        mean = sum(words) / len(words)
        shares = ", ".join(
            f"{pct(c, len(words))} {label}"
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
        parts.append(figure(svg, cap))
        rows = []
        for kind, values in sorted(caption_columns(clips).items()):
            nonempty = [word_count(v) for v in values.to_pylist() if v and v.strip()]
            if nonempty:
                rows.append((kind, len(nonempty), f"{sum(nonempty) / len(nonempty):.1f}"))
        parts.append(table(("caption", "clips", "mean words"), rows, {1, 2}))
    else:
        models = _cfg(data, "caption", "models")
        why = f" (caption.models: {models})" if models else ""
        parts.append(missing(f"no captions in this run{why}"))
    return _section("lengths", "".join(parts))


def _scores(data: RunData) -> str:
    import numpy as np

    clips = data.clips
    if clips is None:
        return _section("scores", missing(data.problems.get("clips.parquet", "no clips")))
    by_name = score_arrays(clips)
    if not by_name:
        return _section("scores", missing("no scores in clips.parquet"))
    parts = []
    for name in score_order(list(by_name)):
        v = by_name[name]
        v = v[np.isfinite(v)]
        if not len(v):
            parts.append(missing(f"{name}: no finite values"))
            continue
        labels, edges, counts = score_histogram(v.tolist(), name)
        what = score_info(name).description
        cap = (
            f"{esc(what)}{': ' if what else ''}{len(v)} clips, "
            f"{clips.num_rows - len(v)} without; mean {fmt(float(v.mean()))}, median "
            f"{fmt(float(np.median(v)))}, min {fmt(float(v.min()))}, max {fmt(float(v.max()))}"
        )
        svg = svg_vbars(f"score_{name}", labels, counts, title=name, x_title=name, edges=edges)
        parts.append(figure(svg, cap))
    return _section("scores", "".join(parts))


def _videos(data: RunData) -> str:
    clips, videos = data.clips, data.videos
    parts = ["<h3>Clips per video</h3>"]
    if clips is None:
        parts.append(missing(data.problems.get("clips.parquet", "no clips")))
    else:
        per = Counter(column_values(clips, "video_id"))
        ids = column_values(videos, "id")
        statuses = column_values(videos, "status") or [None] * len(ids)
        for vid, status in zip(ids, statuses, strict=True):
            if status != "failed":  # a failed video was never split into clips
                per.setdefault(vid, 0)
        if per:
            counts = bucket_counts(list(per.values()), CLIPS_PER_VIDEO_BUCKETS)
            mean = sum(per.values()) / len(per)
            where = "clips.parquet only"
            if ids:
                where = "videos.parquet and clips.parquet"
                where += ", failed videos left out" if "failed" in statuses else ""
            cap = f"{len(per)} videos ({esc(where)}), mean {mean:.2f} clips per video"
            svg = svg_vbars(
                "clips_per_video",
                bucket_labels(CLIPS_PER_VIDEO_BUCKETS, integer=True),
                counts,
                title="Clips per video",
                x_title="clips per video",
                y_title="videos",
            )
            parts.append(figure(svg, cap))
        else:
            parts.append(missing("no videos and no clips"))
    parts.append("<h3>Source videos: resolution and frame rate</h3>")
    if videos is None or videos.num_rows == 0:
        parts.append(missing(data.problems.get("videos.parquet", "videos.parquet has no rows")))
        return _section("videos", "".join(parts))
    widths, heights = column_values(videos, "width"), column_values(videos, "height")
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
        parts.append(figure(svg, f"{len(sizes)} videos with a known size"))
        labels, values = top_categories(Counter(f"{w}x{h}" for w, h in sizes))
        parts.append(
            table(("width x height", "videos"), list(zip(labels, values, strict=True)), {1})
        )
    else:
        parts.append(missing("no video sizes in videos.parquet"))
    fps = [f for f in column_values(videos, "fps") if f]
    if fps:
        labels, values = top_categories(Counter(f"{edge_text(float(f), 3)} fps" for f in fps))
        svg = svg_hbars("fps", labels, values, title="Source video frame rate")
        parts.append(figure(svg, f"{len(fps)} videos with a known frame rate"))
    else:
        parts.append(missing("no frame rates in videos.parquet"))
    probed = [w is not None for w in widths]  # videos.parquet may list unprobed videos
    codecs = Counter(
        c or "?" for c, ok in zip(column_values(videos, "codec"), probed, strict=False) if ok
    )
    if codecs:
        labels, values = top_categories(codecs)
        parts.append(table(("codec", "videos"), list(zip(labels, values, strict=True)), {1}))
    return _section("videos", "".join(parts))


def _status_counts(data: RunData) -> str:
    """Videos by status and reason, from videos.parquet's status trail."""
    videos = data.videos
    if videos is None:
        return missing(data.problems.get("videos.parquet", "videos.parquet is missing"))
    if "status" not in videos.column_names:
        return missing(
            f"videos.parquet has no status column: {NOT_RECORDED} (its rows are the probed "
            "videos only)"
        )
    statuses = [str(s or "?") for s in column_values(videos, "status")]
    reasons = column_values(videos, "reason") or [None] * len(statuses)
    by_status = Counter(statuses)
    order = {s: i for i, s in enumerate(VIDEO_STATUSES)}
    labels = sorted(by_status, key=lambda s: (order.get(s, len(order)), s))
    svg = svg_hbars(
        "video_status", labels, [by_status[s] for s in labels], title="Input videos by status"
    )
    pairs = Counter(zip(statuses, (str(r) if r else "" for r in reasons), strict=True))
    rows = sorted(pairs.items(), key=lambda kv: (order.get(kv[0][0], len(order)), -kv[1], kv[0]))
    return figure(
        svg,
        f"{len(statuses)} input videos in videos.parquet: ok gave clips, dropped: a rule "
        "removed the video or all its clips, failed: an error (see the failed items)",
    ) + table(("status", "reason", "videos"), [(s, r, n) for (s, r), n in rows], {2})


def _is_clip_id(item: str) -> bool:
    try:
        parse_clip_id(item)
    except ValueError:
        return False
    return True


def stage_reason_rows(data: RunData) -> list[tuple[str, str, str, int, int]]:
    """(stage, reason, outcome, clips, videos) of dropped.jsonl and failures.jsonl: one row per
    stage, reason and outcome (dropped / failed), in the run's stage order (input first)."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for d in data.dropped or []:
        key = (str(d.get("stage") or "?"), str(d.get("rule") or "?"), "dropped")
        video = d.get("kind") == "video"
        counts.setdefault(key, [0, 0])[1 if video else 0] += 1
    for f in data.failures or []:
        key = (str(f.get("stage") or "?"), str(f.get("reason") or "?"), "failed")
        clip = _is_clip_id(str(f.get("item") or ""))
        counts.setdefault(key, [0, 0])[0 if clip else 1] += 1
    stages = ["input", *(str(st.get("name")) for st in (data.stats or {}).get("stages") or [])]
    place = {name: i for i, name in enumerate(dict.fromkeys(stages))}
    rows = [(st, reason, outcome, c, v) for (st, reason, outcome), (c, v) in counts.items()]
    return sorted(rows, key=lambda r: (place.get(r[0], len(place)), r[0], r[2], -r[3] - r[4], r[1]))


def values_text(values: Any) -> str:
    """A dropped row's measured values as "motion 0.4, threshold 1"."""
    if not isinstance(values, dict):
        return "" if values is None else str(values)
    return ", ".join(
        f"{k} {fmt(v) if isinstance(v, int | float) and not isinstance(v, bool) else v}"
        for k, v in values.items()
    )


def _dropped_videos(data: RunData) -> str:
    """The videos that a rule removed (or all of whose clips rules removed), with the reason."""
    videos = data.videos
    per_video = Counter(
        str(d.get("video_id")) for d in data.dropped or [] if d.get("kind") != "video"
    )
    video_rule = {str(d.get("item")): d for d in data.dropped or [] if d.get("kind") == "video"}
    if videos is not None and "status" in videos.column_names:
        ids, statuses = column_values(videos, "id"), column_values(videos, "status")
        reasons = column_values(videos, "reason") or [None] * len(ids)
        sources = column_values(videos, "source") or [""] * len(ids)
        durations = column_values(videos, "duration") or [None] * len(ids)
        rows = [
            (
                vid,
                reason or "",
                per_video.get(vid, 0),
                values_text(video_rule[vid].get("values")) if vid in video_rule else "",
                fmt(dur),
                src,
            )
            for vid, st, reason, dur, src in zip(
                ids, statuses, reasons, durations, sources, strict=True
            )
            if st == "dropped"
        ]
        where = "videos.parquet"
    elif data.dropped is not None:
        rows = [
            (
                vid,
                str(d.get("rule", "")),
                per_video.get(vid, 0),
                values_text(d.get("values")),
                "-",
                str(d.get("source", "")),
            )
            for vid, d in video_rule.items()
        ]
        where = "dropped.jsonl (videos.parquet has no status)"
    else:
        return missing(f"which videos were dropped: {NOT_RECORDED}")
    if not rows:
        return f"<p>No video was dropped ({esc(where)}).</p>"
    shown = rows[:MAX_DROPPED_VIDEO_ROWS]
    more = len(rows) - len(shown)
    note = f" ({more} more not shown)" if more > 0 else ""
    return f"<p>{len(rows)} dropped video(s), from {esc(where)}{esc(note)}.</p>" + table(
        ("video", "reason", "clips dropped", "values", "duration (s)", "source"), shown, {2, 4}
    )


def _dropped_clips(data: RunData, seed: int) -> str:
    """Middle frames of a seeded sample of the clips rules removed, with the rule and values."""
    if data.dropped is None:
        return missing(f"which clips were dropped: {NOT_RECORDED}")
    clips = [d for d in data.dropped if d.get("kind") != "video"]
    if not clips:
        return "<p>No clip was dropped.</p>"
    k = min(MAX_DROPPED_THUMBS, len(clips))
    picked = [clips[i] for i in sorted(random.Random(seed).sample(range(len(clips)), k))]
    paths = video_paths(data.videos)
    cards = []
    for d in picked:
        item = str(d.get("item", ""))
        start, end = d.get("start"), d.get("end")
        if isinstance(start, int | float) and isinstance(end, int | float):
            src = paths.get(str(d.get("video_id"))) or str(d.get("source") or "")
            thumb = source_thumb(src, float(start), float(end))
            span = f" · {float(start):.2f}-{float(end):.2f} s"
        else:
            thumb, span = Thumb(origin="no clip times in dropped.jsonl"), ""
        if thumb.uri:
            img = (
                f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" '
                f'alt="middle frame of dropped {esc(item)}" title="{esc(thumb.origin)}">'
            )
        else:
            img = f'<div class="placeholder">no frame: {esc(thumb.origin)}</div>'
        cards.append(
            f'<figure class="card dropped">{img}<figcaption>'
            f'<p class="rule"><b>{esc(d.get("rule", ""))}</b> ({esc(d.get("stage", ""))})</p>'
            f'<p class="values">{esc(values_text(d.get("values")))}</p>'
            f'<p class="meta">{esc(item)}{esc(span)}</p></figcaption></figure>'
        )
    head = (
        f"<p>{k} of {len(clips)} dropped clips (seed {seed}): the frame at the clip's middle, "
        "from its source video; the rule that removed it and the values it looked at.</p>"
    )
    return head + f'<div class="grid-samples">{"".join(cards)}</div>'


def _dropped(data: RunData, seed: int) -> str:
    stats = data.stats or {}
    parts = ["<h3>Input videos by status</h3>", _status_counts(data)]
    parts.append("<h3>By stage and reason</h3>")
    if data.dropped is None:
        parts.append(missing(f"dropped.jsonl: {NOT_RECORDED}"))
    if data.failures is None:
        parts.append(missing(data.problems.get("failures.jsonl", "failures.jsonl missing")))
    rows = stage_reason_rows(data)
    if rows:
        parts.append(table(("stage", "reason", "outcome", "clips", "videos"), rows, {3, 4}))
    elif data.dropped is not None and data.failures is not None:
        parts.append("<p>Nothing was dropped and nothing failed.</p>")
    if data.dropped:
        rules = Counter(str(d.get("rule") or "?") for d in data.dropped)
        labels, values = top_categories(rules)
        svg = svg_hbars("dropped_rule", labels, values, title="Dropped by rule")
        parts.append(figure(svg, f"{len(data.dropped)} item(s) in dropped.jsonl"))
        by_stage = Counter(str(d.get("stage") or "?") for d in data.dropped)
        labels, values = top_categories(by_stage)
        parts.append(figure(svg_hbars("dropped_stage", labels, values, title="Dropped by stage")))
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
    else:
        reasons, stages, source = Counter(), Counter(), ""
    if source:
        total = sum(reasons.values())
        parts.append(f"<p>{total} failed item(s), from {esc(source)}.</p>")
        if total:
            labels, values = top_categories(reasons)
            svg = svg_hbars("failures_reason", labels, values, title="Failures by reason")
            parts.append(figure(svg))
            if stages:
                labels, values = top_categories(stages)
                svg = svg_hbars("failures_stage", labels, values, title="Failures by stage")
                parts.append(figure(svg))
    if data.dropped is None:  # an older run: the stage counters are all there is
        counted = [
            (st.get("name", ""), reason, n)
            for st in stats.get("stages") or []
            for reason, n in (st.get("dropped") or {}).items()
        ]
        if counted:
            parts.append("<p>Dropped, as counted by the stages (stats.json):</p>")
            parts.append(table(("stage", "reason", "items"), counted, {2}))
    if data.failures:
        rows = [
            (
                f.get("item", ""),
                f.get("stage", ""),
                f.get("reason", ""),
                short(str(f.get("message", "")), MAX_MESSAGE),
            )
            for f in data.failures[:MAX_FAILURE_ROWS]
        ]
        more = len(data.failures) - len(rows)
        parts.append(
            f"<details><summary>failed items ({len(rows)} shown"
            f"{f', {more} more in failures.jsonl' if more > 0 else ''})</summary>"
            + table(("item", "stage", "reason", "message"), rows)
            + "</details>"
        )
    parts.append("<h3>Dropped videos</h3>")
    parts.append(_dropped_videos(data))
    parts.append("<h3>Dropped clips</h3>")
    parts.append(_dropped_clips(data, seed))
    return _section("dropped", "".join(parts))


def _samples(data: RunData, samples: int, seed: int) -> str:
    clips = data.clips
    if clips is None:
        return _section("samples", missing(data.problems.get("clips.parquet", "no clips")))
    n = clips.num_rows
    k = max(0, min(samples, n))
    if not k:
        return _section("samples", missing("no clips to show" if n else "no clips in this run"))
    idx = sorted(random.Random(seed).sample(range(n), k))
    rows = clips.take(idx).to_pylist()
    thumbs = sample_thumbs(data.run_dir, rows, data.videos)
    caption_kinds = list(caption_columns(clips))
    score_names = score_order(list(score_arrays(clips)))
    cards = []
    for row, thumb in zip(rows, thumbs, strict=True):
        clip_id = str(row.get("clip_id"))
        captions = {k: row[caption_column(k)] for k in caption_kinds if row[caption_column(k)]}
        main = row.get("caption") or ""
        main = main if main.strip() else ""
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
        score_text = ", ".join(
            f"{name} {fmt(row[name])}" for name in score_names if row.get(name) is not None
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
        return _section("throughput", missing(data.problems.get("stats.json", "no stats.json")))
    stages = [s for s in stats.get("stages") or [] if isinstance(s, dict)]
    if not stages:
        return _section("throughput", missing("stats.json lists no stages"))
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
                pct(sec, busy),
            )
        )
    headers = ("stage", "unit", "in", "out", "clips out", "dropped", "failed", "seconds")
    headers += ("items in / s", "share of stage time")
    parts = [table(headers, rows, set(range(2, 10)))]
    svg = svg_hbars(
        "stage_seconds",
        [str(s.get("name", "")) for s in stages],
        [round(float(s.get("seconds") or 0), 3) for s in stages],
        title="Seconds per stage (summed over shards and workers)",
        unit=" s",
    )
    parts.append(figure(svg))
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


def render_sections(data: RunData, samples: int, seed: int) -> list[str]:
    """Every section's HTML in SECTIONS order; a section that fails is a note, not a lost page."""
    builders = {
        "summary": lambda: _summary(data),
        "lengths": lambda: _lengths(data),
        "scores": lambda: _scores(data),
        "videos": lambda: _videos(data),
        "dropped": lambda: _dropped(data, seed),
        "samples": lambda: _samples(data, samples, seed),
        "throughput": lambda: _throughput(data),
    }
    body = []
    for anchor, _ in SECTIONS:
        try:
            body.append(builders[anchor]())
        except Exception as e:  # one broken section must not cost the whole page
            log.warning("report: section %s failed: %s", anchor, e, exc_info=True)
            body.append(_section(anchor, missing(f"this section failed: {type(e).__name__}: {e}")))
    return body
