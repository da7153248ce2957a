"""`internvid report`: every section, inline SVG plots with known counts, escaped captions, no network."""

from __future__ import annotations

import base64
import html
import json
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from internvid.cli.report import register
from internvid.config import RunConfig
from internvid.io.tables import BASE_COLUMNS, clip_schema, clips_table, is_legacy, read_clips
from internvid.report import write_report
from internvid.report.data import GENERIC_SCORE, score_table
from internvid.report.sections import MAX_DROPPED_THUMBS, NOT_RECORDED, SECTIONS
from internvid.report.thumbs import THUMB_WIDTH
from internvid.run import run

# a caption that must reach the page as text, never as markup (3 words)
EVIL = "<script>alert('x')</script> & one"
# injected caption word counts, one per clip in clips.parquet order: <10: 3, 10-20: 4, 20-30: 1,
# 30+: 1 (clip 0 is EVIL, clip 1 has a coarse caption only)
WORDS = [3, 5, 12, 15, 18, 25, 40, 8, 11]
CAPTION_COUNTS = [3, 4, 1, 1]
# injected text_overlay scores (fixed range 0-1, 10 bins; values at bin centres)
TEXT_OVERLAY = [0.05, 0.15, 0.15, 0.35, 0.95, 0.95, 0.95, 0.55, 0.05]
TEXT_OVERLAY_COUNTS = [2, 2, 0, 1, 0, 1, 0, 0, 0, 3]
VICLIP_CLIPS = 5  # clips given a viclip_sim score (the other 4 have none)
# demo clip durations 4, 6, 10, 1, 4, 10, 2, 3, 4 s in 0-2, 2-5, 5-10, 10-20, 20-60, 60+ s
DURATION_COUNTS = [1, 5, 1, 2, 0, 0]
# clips per demo video: a 2, b 3, c 2, d 2, in buckets 0, 1, 2, 3, 4, 5-9, 10-19, 20-49, 50+
CLIPS_PER_VIDEO_COUNTS = [0, 0, 3, 1, 0, 0, 0, 0, 0]
# the bad inputs' failures (tests/test_run.py checks the run's side)
FAILURES_BY_REASON = {"corrupt": 1, "empty_file": 1, "no_video_stream": 1, "not_a_video": 1}
# attributes that make a browser fetch something
URL_ATTRS = {"src", "href", "xlink:href", "srcset", "poster", "action", "data", "background"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # headless browsers tried, in order


class Page(HTMLParser):
    """What the tests look at in a report: plots and their bars, images, headings, captions."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.plots: dict[str, list[tuple[str, float]]] = {}  # data-plot -> [(label, count)]
        self.svgs = 0
        self.imgs: list[dict[str, str]] = []  # of the sample grid
        self.dropped_imgs: list[dict[str, str]] = []  # of the dropped clips' cards
        self.tables: list[tuple[list[str], list[list[str]]]] = []  # (headers, rows of cells)
        self.cards: list[list[str]] = []  # per dropped clip card: the texts of its <p>s
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: Counter = Counter()
        self.headings: list[str] = []
        self.captions: list[str] = []  # text of p.caption in the frame grid
        self.placeholders = 0  # of the sample grid
        self.dropped_placeholders: list[str] = []  # text of the dropped cards' placeholders
        self._in_dropped_card = False
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._head_row = False
        self.style = ""
        self._plot: str | None = None
        self._grab: str | None = None
        self._buf: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags[tag] += 1
        self.attrs += [(tag, k, v) for k, v in a.items()]
        classes = a.get("class", "").split()
        if tag == "svg":
            self.svgs += 1
            self._plot = a.get("data-plot", f"unnamed{self.svgs}")
            self.plots[self._plot] = []
        elif tag == "rect" and "bar" in classes:
            self.plots[self._plot].append((a["data-label"], float(a["data-count"])))
        elif tag == "img":
            (self.dropped_imgs if self._in_dropped_card else self.imgs).append(a)
        elif tag == "div" and "placeholder" in classes and not self._in_dropped_card:
            self.placeholders += 1
        elif tag == "figure" and "dropped" in classes:
            self._in_dropped_card = True
            self.cards.append([])
        elif tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self._row, self._head_row = [], False
        elif tag in ("td", "th"):
            self._cell = []
            self._head_row = self._head_row or tag == "th"
        if (
            tag in ("h2", "style")
            or (tag == "p" and "caption" in classes)
            or (self._in_dropped_card and tag in ("p", "div"))
        ):
            self._grab, self._buf = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            headers, rows = self.tables[-1]
            if self._head_row:
                headers.extend(self._row)
            else:
                rows.append(self._row)
            self._row = None
        elif tag == "figure":
            self._in_dropped_card = False
        if tag == self._grab:
            text = "".join(self._buf)
            if tag == "h2":
                self.headings.append(text)
            elif tag == "style":
                self.style += text
            elif self._in_dropped_card and tag == "div":
                self.dropped_placeholders.append(text)
            elif self._in_dropped_card:
                self.cards[-1].append(text)
            else:
                self.captions.append(text)
            self._grab = None

    def handle_data(self, data: str) -> None:
        if self._grab:
            self._buf.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, *headers: str) -> list[list[str]]:
        """The rows (cell texts) of the one table with these headers."""
        (rows,) = [r for h, r in self.tables if tuple(h) == headers]
        return rows

    def counts(self, plot: str) -> list[float]:
        return [c for _, c in self.plots[plot]]

    def bars(self, plot: str) -> dict[str, float]:
        return dict(self.plots[plot])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, demo_videos, bad_files) -> Path:
    """A real run (exact cut: clip files in the shards) over the demo videos and the bad inputs."""
    folder = tmp_path_factory.mktemp("report_run")
    inp = folder / "input"
    inp.mkdir()
    for p in [*sorted(demo_videos.glob("*.mp4")), *bad_files.values()]:
        shutil.copy(p, inp / p.name)
    cfg = RunConfig()
    cfg.output.videos_per_shard = 2
    run([str(inp)], folder / "out", cfg, progress=False)
    return folder / "out"


@pytest.fixture(scope="module")
def rich_dir(run_dir, tmp_path_factory) -> Path:
    """A copy of the run with known captions (one of them hostile) and scores injected."""
    out = tmp_path_factory.mktemp("report_rich") / "out"
    shutil.copytree(run_dir, out)
    clips = read_clips(out / "clips.parquet")
    assert len(clips) == len(WORDS)
    for i, clip in enumerate(clips):
        text = EVIL if i == 0 else " ".join(f"word{j}" for j in range(WORDS[i]))
        clip.captions = {"coarse": text} if i == 1 else {"coarse": "a b", "fused": text}
        clip.scores["text_overlay"] = TEXT_OVERLAY[i]
        if i < VICLIP_CLIPS:
            clip.scores["viclip_sim"] = 0.1 + 0.05 * i
    pq.write_table(clips_table(clips), out / "clips.parquet")
    return out


@pytest.fixture(scope="module")
def rich_page(rich_dir) -> tuple[str, Page]:
    path = write_report(rich_dir)
    text = path.read_text(encoding="utf-8")
    return text, Page(text)


def test_every_section_and_the_summary(rich_page, rich_dir):
    text, page = rich_page
    assert page.headings == [f"{i}. {title}" for i, (_, title) in enumerate(SECTIONS, 1)]
    assert (rich_dir / "report.html").is_file()
    assert not list(rich_dir.glob(".report.html.tmp-*")), "temp file left"
    for label, value in [("videos (inputs)", "8"), ("clips", "9"), ("failures", "4")]:
        assert f"<td>{label}</td><td>{value}</td>" in text
    assert "<td>cut mode</td><td>exact</td>" in text
    assert 'class="missing"' not in text, "every input is there"


def test_plots_are_inline_svg_with_the_known_counts(rich_page, run_dir):
    _, page = rich_page
    stats = json.loads((run_dir / "stats.json").read_text())
    expected = {
        "duration": DURATION_COUNTS,
        "caption_words": CAPTION_COUNTS,
        "score_text_overlay": TEXT_OVERLAY_COUNTS,
        "score_frozen": [9, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # the demo clips never freeze
        "clips_per_video": CLIPS_PER_VIDEO_COUNTS,
        "resolution": [4, 0, 0, 0, 0, 0, 0],  # four 320x240 videos: <360p
        "fps": [4],
        "failures_reason": [1, 1, 1, 1],
        "failures_stage": [4],
        # the status trail: the 4 bad inputs failed; the demo's 0.6 s pieces and still shots
        "video_status": [4, 4],
        "dropped_rule": [3, 2],
        "dropped_stage": [3, 2],
    }
    for plot, counts in expected.items():
        assert page.counts(plot) == counts, plot
    assert page.bars("failures_reason") == FAILURES_BY_REASON
    assert page.bars("failures_stage") == {"probe": 4}
    assert page.bars("fps") == {"25 fps": 4}
    assert page.bars("video_status") == {"ok": 4, "failed": 4}
    assert page.bars("dropped_rule") == {"still": 3, "clip_too_short": 2}
    assert page.bars("dropped_stage") == {"motion": 3, "split": 2}
    assert [label for label, _ in page.plots["stage_seconds"]] == [
        s["name"] for s in stats["stages"]
    ]
    assert page.plots["duration"][0][0] == "0-2 s"
    for name, n in (("viclip_sim", VICLIP_CLIPS), ("motion", 9), ("text_overlay", 9)):
        counts = page.counts(f"score_{name}")
        assert len(counts) == 10 and sum(counts) == n, name
    assert "score_aesthetic" not in page.plots, "no plot for a score that no clip has"
    assert f"{VICLIP_CLIPS} clips, {9 - VICLIP_CLIPS} without" in rich_page[0]
    # every plot is an inline SVG; the only images are the frame grid's
    assert page.svgs == len(page.plots) == len(expected) + 3  # motion, viclip_sim, stage seconds
    assert page.tags["svg"] == page.svgs and len(page.imgs) == 9


def test_frame_grid_has_data_uri_frames_and_escaped_captions(rich_page):
    text, page = rich_page
    assert len(page.imgs) == 9 and page.placeholders == 0
    for img in page.imgs:
        assert img["src"].startswith("data:image/jpeg;base64,")
        jpeg = base64.b64decode(img["src"].split(",", 1)[1])
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert frame.shape == (192, THUMB_WIDTH, 3)  # 320x240 clips at 256 px wide
        assert (int(img["width"]), int(img["height"])) == (THUMB_WIDTH, 192)
        assert frame.std() > 1, "a real picture, not a blank"
    assert EVIL in page.captions, "the caption is shown as text"
    assert "&lt;script&gt;alert(" in text
    assert "<script" not in text.lower() and page.tags["script"] == 0


def test_no_network_urls(rich_page):
    text, page = rich_page
    for tag, name, value in page.attrs:
        if name in URL_ATTRS:
            v = value.strip().lower()
            assert v.startswith(("data:", "#")), f"<{tag} {name}={value[:60]}>"
        assert not re.search(r"https?://", value, re.I), f"<{tag} {name}={value[:60]}>"
    assert "url(" not in page.style and "@import" not in page.style
    for tag in ("script", "link", "iframe", "object", "embed", "video", "audio", "source"):
        assert page.tags[tag] == 0, tag
    assert 'http-equiv="Content-Security-Policy"' in text and "default-src 'none'" in text


def test_sample_is_seeded_and_out_is_honoured(run_dir, tmp_path):
    def ids(path: Path) -> list[str]:
        return [img["alt"] for img in Page(path.read_text(encoding="utf-8")).imgs]

    a = write_report(run_dir, tmp_path / "a.html", samples=4, seed=1)
    b = write_report(run_dir, tmp_path / "b.html", samples=4, seed=1)
    assert a == tmp_path / "a.html" and len(ids(a)) == 4 and ids(a) == ids(b)
    others = {
        tuple(ids(write_report(run_dir, tmp_path / "c.html", samples=4, seed=s))) for s in (2, 3, 4)
    }
    assert others - {tuple(ids(a))}, "another seed picks other clips"
    none = Page(write_report(run_dir, tmp_path / "d.html", samples=0).read_text())
    assert not none.imgs and len(none.headings) == len(SECTIONS)


def test_frames_come_from_the_source_video_without_clip_files(run_dir, rich_page, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run_dir, out, ignore=shutil.ignore_patterns("*.tar"))
    page = Page(write_report(out).read_text(encoding="utf-8"))
    from_tars = {img["alt"]: img for img in Page(write_report(run_dir).read_text()).imgs}
    assert len(page.imgs) == 9 and page.placeholders == 0
    for img in page.imgs:
        assert img["title"].startswith("source video at")
        assert from_tars[img["alt"]]["title"].endswith(".mp4")  # from the shard tar

        def pixels(i: dict[str, str]) -> np.ndarray:
            jpeg = base64.b64decode(i["src"].split(",", 1)[1])
            return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(float)

        diff = np.abs(pixels(img) - pixels(from_tars[img["alt"]])).mean()
        assert diff < 12, f"{img['alt']}: the two middle frames differ ({diff:.1f})"


def test_missing_inputs_degrade_gracefully(run_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    text = write_report(empty).read_text(encoding="utf-8")
    page = Page(text)
    assert len(page.headings) == len(SECTIONS) and page.svgs == 0
    for name in ("clips.parquet", "videos.parquet", "failures.jsonl", "stats.json", "config.yaml"):
        assert f"{name} is missing" in text, name
    assert f"dropped.jsonl: {NOT_RECORDED}" in text
    assert f"which clips were dropped: {NOT_RECORDED}" in text

    only_clips = tmp_path / "only_clips"
    only_clips.mkdir()
    clips = read_clips(run_dir / "clips.parquet")
    for clip in clips:
        clip.source = str(tmp_path / "gone" / f"{clip.video_id}.mp4")
    pq.write_table(clips_table(clips), only_clips / "clips.parquet")
    page = Page(write_report(only_clips).read_text(encoding="utf-8"))
    assert page.counts("duration") == DURATION_COUNTS
    assert page.placeholders == 9 and not page.imgs
    assert "failures_reason" not in page.plots and "stage_seconds" not in page.plots

    with pytest.raises(NotADirectoryError):
        write_report(tmp_path / "nope")


def _cli_app() -> typer.Typer:
    """An app with only `internvid report` on it."""
    app = typer.Typer()

    @app.callback()
    def _main() -> None:
        pass

    register(app)
    return app


@pytest.mark.allow_error_logs  # the missing folder is logged as an error
def test_cli_command(run_dir, tmp_path):
    app = _cli_app()
    runner = CliRunner()
    out = tmp_path / "r.html"
    args = ["report", str(run_dir), "--out", str(out), "--samples", "2", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(Page(out.read_text(encoding="utf-8")).imgs) == 2
    assert runner.invoke(app, ["report", str(tmp_path / "nope")]).exit_code == 2


def test_cli_config_file_and_flags_over_it(run_dir, tmp_path):
    runner = CliRunner()
    app = _cli_app()
    out = tmp_path / "from_config.html"
    cfg = tmp_path / "report.yaml"
    cfg.write_text(f"out: {out}\nsamples: 3\nseed: 5\n", encoding="utf-8")
    result = runner.invoke(app, ["report", str(run_dir), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    alts = [img["alt"] for img in Page(out.read_text(encoding="utf-8")).imgs]
    assert alts == [
        img["alt"]
        for img in Page(write_report(run_dir, tmp_path / "s.html", 3, 5).read_text()).imgs
    ]
    # a flag given on the command line wins over the file; the others keep the file's values
    result = runner.invoke(app, ["report", str(run_dir), "-c", str(cfg), "--samples", "2"])
    assert result.exit_code == 0, result.output
    assert len(Page(out.read_text(encoding="utf-8")).imgs) == 2
    for bad in ("samples: -1\n", "sample: 3\n", "seed: many\n"):
        cfg.write_text(bad, encoding="utf-8")
        result = runner.invoke(app, ["report", str(run_dir), "--config", str(cfg)])
        assert result.exit_code == 2, (bad, result.output)


def test_a_score_outside_the_table_is_shown(run_dir, tmp_path):
    """A score column the report's table does not know (a new scorer's) still gets its
    histogram, after the known ones, with the generic description, and is on the cards."""
    assert "toy_score" not in score_table()
    out = tmp_path / "out"
    shutil.copytree(run_dir, out)
    clips = read_clips(out / "clips.parquet")
    assert len(clips) == 9
    for i, clip in enumerate(clips):
        clip.scores["toy_score"] = float(i)
    table = clips_table(clips)
    assert "toy_score" in table.column_names  # a column of its own
    pq.write_table(table, out / "clips.parquet")
    text = write_report(out).read_text(encoding="utf-8")
    page = Page(text)
    # values 0..8 over the data's range 0..8 in 10 bins (4.0 opens the sixth bin)
    assert page.counts("score_toy_score") == [1, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    assert page.plots["score_toy_score"][0][0] == "0 to 0.8"
    scores = [p for p in page.plots if p.startswith("score_")]
    assert scores == ["score_motion", "score_frozen", "score_toy_score"]
    assert f"{html.escape(GENERIC_SCORE.description)}: 9 clips, 0 without" in text
    assert len(re.findall(r"toy_score \d", text)) == len(page.imgs) == 9  # every card shows it


# videos a test folder adds to the run's, with their status trail: (id, status, reason, duration)
EXTRA_VIDEOS = [
    ("gone", "dropped", "still", None),
    ("short_vid", "dropped", "too_short", 3.0),
    ("corrupt", "failed", "corrupt", None),
]
GONE = "/nonexistent/gone.mp4"  # a source that is not there
# dropped.jsonl of the test folder (file order)
DROPPED = [
    {"item": "demo_a_000010600_000014000", "kind": "clip", "video_id": "demo_a", "stage": "motion",
     "rule": "still", "values": {"motion": 0.4, "threshold": 1.0}, "start": 10.6, "end": 14.0},
    {"item": "gone_000001000_000003000", "kind": "clip", "video_id": "gone", "stage": "motion",
     "rule": "still", "values": {"motion": 0.4, "threshold": 1.0}, "start": 1.0, "end": 3.0,
     "source": GONE},
    {"item": "short_vid", "kind": "video", "video_id": "short_vid", "stage": "collect",
     "rule": "too_short", "values": {"duration": 3.0, "min": 10.0}, "start": None, "end": None,
     "source": "/nonexistent/short_vid.mp4"},
    {"item": "demo_d_000005000_000005600", "kind": "clip", "video_id": "demo_d", "stage": "split",
     "rule": "clip_too_short", "values": {"duration": 0.6, "min": 1.0}, "start": 5.0, "end": 5.6},
    {"item": "demo_d_000012000_000012400", "kind": "clip", "video_id": "demo_d", "stage": "split",
     "rule": "clip_too_short", "values": {"duration": 0.4, "min": 1.0}, "start": 12.0,
     "end": 12.4},
]  # fmt: skip
FAILURES = [
    {"item": "corrupt", "stage": "probe", "reason": "corrupt", "message": "cannot open"},
    {"item": "demo_b_000000000_000004000", "stage": "caption", "reason": "caption_error",
     "message": "boom"},
]  # fmt: skip
DROPPED_VIDEO_HEAD = ("video", "reason", "clips dropped", "values", "duration (s)", "source")
TRAIL_COLUMNS = ("status", "reason", "clips")  # the status trail's columns of videos.parquet


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _videos_without_trail(path: Path) -> pa.Table:
    table = pq.read_table(path)
    return table.drop_columns([c for c in TRAIL_COLUMNS if c in table.column_names])


@pytest.fixture(scope="module")
def trail_dir(run_dir, tmp_path_factory) -> Path:
    """The run with a status trail the test wrote: videos.parquet (the 4 demo videos ok, 2
    dropped, 1 failed), DROPPED and FAILURES."""
    out = tmp_path_factory.mktemp("report_trail") / "out"
    shutil.copytree(run_dir, out)
    videos = _videos_without_trail(out / "videos.parquet")
    rows = [dict(r, status="ok", reason=None, clips=n) for r, n in zip(
        (r for r in videos.to_pylist() if r["id"].startswith("demo_")), (2, 3, 2, 2), strict=True
    )]  # fmt: skip
    for vid, status, reason, duration in EXTRA_VIDEOS:
        src = GONE if vid == "gone" else f"/nonexistent/{vid}.mp4"
        rows.append(
            dict(id=vid, source=src, status=status, reason=reason, clips=0, duration=duration)
        )
    schema = videos.schema
    for name, kind in (("status", pa.string()), ("reason", pa.string()), ("clips", pa.int32())):
        schema = schema.append(pa.field(name, kind))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out / "videos.parquet")
    _jsonl(out / "dropped.jsonl", DROPPED)
    _jsonl(out / "failures.jsonl", FAILURES)
    return out


def test_dropped_and_failed_counts_rows_and_frames(trail_dir):
    from internvid.media.frames import frames_at
    from internvid.report.thumbs import jpeg_uri

    text = write_report(trail_dir).read_text(encoding="utf-8")
    page = Page(text)
    assert page.table("status", "reason", "videos") == [
        ["ok", "", "4"],
        ["dropped", "still", "1"],
        ["dropped", "too_short", "1"],
        ["failed", "corrupt", "1"],
    ]
    # in the run's stage order (stats.json), a stage it does not list (caption) after them
    assert page.table("stage", "reason", "outcome", "clips", "videos") == [
        ["probe", "corrupt", "failed", "0", "1"],
        ["collect", "too_short", "dropped", "0", "1"],
        ["split", "clip_too_short", "dropped", "2", "0"],
        ["motion", "still", "dropped", "2", "0"],
        ["caption", "caption_error", "failed", "1", "0"],
    ]
    assert page.table(*DROPPED_VIDEO_HEAD) == [
        ["gone", "still", "1", "", "-", GONE],
        ["short_vid", "too_short", "0", "duration 3, min 10", "3", "/nonexistent/short_vid.mp4"],
    ]
    assert page.bars("video_status") == {"ok": 4, "dropped": 2, "failed": 1}
    assert page.bars("dropped_rule") == {"clip_too_short": 2, "still": 2, "too_short": 1}
    assert page.bars("dropped_stage") == {"motion": 2, "split": 2, "collect": 1}
    assert page.bars("failures_stage") == {"caption": 1, "probe": 1}
    summary = dict(map(tuple, page.table("", "value")))
    assert {k: summary[k] for k in ("videos ok", "videos dropped", "videos failed")} == {
        "videos ok": "4",
        "videos dropped": "2",
        "videos failed": "1",
    }
    assert summary["dropped by rules (dropped.jsonl)"] == "5" and summary["failures"] == "2"
    # every dropped clip (4 of them, all under MAX_DROPPED_THUMBS) in file order
    assert "4 of 4 dropped clips (seed 0)" in text
    assert page.cards == [
        ["still (motion)", "motion 0.4, threshold 1", "demo_a_000010600_000014000 · 10.60-14.00 s"],
        ["still (motion)", "motion 0.4, threshold 1", "gone_000001000_000003000 · 1.00-3.00 s"],
        ["clip_too_short (split)", "duration 0.6, min 1", "demo_d_000005000_000005600 · 5.00-5.60 s"],
        ["clip_too_short (split)", "duration 0.4, min 1", "demo_d_000012000_000012400 · 12.00-12.40 s"],
    ]  # fmt: skip
    assert page.dropped_placeholders == ["no frame: source video not found"]
    paths = dict(zip(*pq.read_table(trail_dir / "videos.parquet", columns=["id", "path"])
                     .to_pydict().values(), strict=True))  # fmt: skip
    middles = [("demo_a", 12.3), ("demo_d", 5.3), ("demo_d", 12.2)]
    assert [i["alt"] for i in page.dropped_imgs] == [
        f"middle frame of dropped {DROPPED[i]['item']}" for i in (0, 3, 4)
    ]
    for img, (vid, t) in zip(page.dropped_imgs, middles, strict=True):
        (rgb,) = frames_at(paths[vid], [t])
        assert img["src"] == jpeg_uri(rgb)[0], "the frame at the clip's middle, from its source"
        assert img["title"] == f"source video at {t:.2f} s"
    assert len(page.imgs) == 9, "the sample grid is unchanged"


def test_dropped_clips_are_a_seeded_sample(trail_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(trail_dir, out, ignore=shutil.ignore_patterns("*.tar"))
    n = 3 * MAX_DROPPED_THUMBS
    rows = [
        dict(DROPPED[1], item=f"gone_{i:09d}_{i + 1:09d}", start=float(i), end=i + 1.0)
        for i in range(n)
    ]
    _jsonl(out / "dropped.jsonl", rows)

    def items(seed: int) -> list[str]:
        page = Page(write_report(out, tmp_path / f"{seed}.html", samples=0, seed=seed).read_text())
        assert len(page.dropped_placeholders) == MAX_DROPPED_THUMBS and not page.dropped_imgs
        return [card[-1].split(" · ")[0] for card in page.cards]

    picked = sorted(random.Random(7).sample(range(n), MAX_DROPPED_THUMBS))
    assert items(7) == [rows[i]["item"] for i in picked]
    assert items(7) != items(8)
    assert (
        f"{MAX_DROPPED_THUMBS} of {n} dropped clips (seed 7)" in (tmp_path / "7.html").read_text()
    )


def test_a_run_without_the_status_trail_says_so(trail_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(trail_dir, out)
    (out / "dropped.jsonl").unlink()
    pq.write_table(_videos_without_trail(out / "videos.parquet"), out / "videos.parquet")
    text = write_report(out).read_text(encoding="utf-8")
    page = Page(text)
    assert f"dropped.jsonl: {NOT_RECORDED}" in text
    assert f"videos.parquet has no status column: {NOT_RECORDED}" in text
    assert f"which videos were dropped: {NOT_RECORDED}" in text
    assert f"which clips were dropped: {NOT_RECORDED}" in text
    assert not page.cards and "video_status" not in page.plots and "dropped_rule" not in page.plots
    # failures.jsonl is still counted; the stages' own counters stand in for dropped.jsonl
    assert page.table("stage", "reason", "outcome", "clips", "videos") == [
        ["probe", "corrupt", "failed", "0", "1"],
        ["caption", "caption_error", "failed", "1", "0"],
    ]
    stats = json.loads((out / "stats.json").read_text())
    counted = [
        [st["name"], reason, str(n)]
        for st in stats["stages"]
        for reason, n in st["dropped"].items()
    ]
    assert counted and page.table("stage", "reason", "items") == counted
    assert "videos probed (videos.parquet)" in text


def test_a_legacy_clips_table_renders_the_same(rich_dir, rich_page, tmp_path):
    """A clips.parquet of internvid before 0.2 (MAP columns captions and scores) gives the same
    plots and captions as the flat one."""
    out = tmp_path / "out"
    shutil.copytree(rich_dir, out)
    legacy = pa.schema(
        [
            *(f for f in clip_schema() if f.name in BASE_COLUMNS and f.name != "caption"),
            pa.field("captions", pa.map_(pa.string(), pa.string())),
            pa.field("scores", pa.map_(pa.string(), pa.float64())),
        ]
    )
    rows = [
        {
            **{f.name: getattr(c, f.name) for f in legacy if hasattr(c, f.name)},
            "duration": c.end - c.start,
            "meta": json.dumps(c.meta),
            "captions": sorted(c.captions.items()),
            "scores": sorted(c.scores.items()),
        }
        for c in read_clips(rich_dir / "clips.parquet")
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=legacy), out / "clips.parquet")
    assert is_legacy(pq.read_schema(out / "clips.parquet"))
    page = Page(write_report(out).read_text(encoding="utf-8"))
    _, flat = rich_page
    assert page.plots == flat.plots and page.captions == flat.captions and EVIL in page.captions
    assert [i["alt"] for i in page.imgs] == [i["alt"] for i in flat.imgs]


@pytest.mark.slow
def test_a_real_run_reports_its_status_trail(real_videos, tmp_path):
    """`internvid run` on the real sample videos (tiny models, no clip files), then `internvid
    report` (both as subprocesses): the section shows the run's own trail, row for row."""
    out = tmp_path / "out"
    run_cmd = [sys.executable, "-m", "internvid", "run", str(real_videos), "--out", str(out)]
    run_cmd += ["--models", "tiny", "--cut-mode", "none", "--no-progress"]
    proc = subprocess.run(run_cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        [sys.executable, "-m", "internvid", "report", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.headings == [f"{i}. {title}" for i, (_, title) in enumerate(SECTIONS, 1)]
    assert "this section failed" not in text
    videos = pq.read_table(out / "videos.parquet").to_pylist()
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    statuses = Counter((v["status"], v["reason"] or "") for v in videos)
    shown = page.table("status", "reason", "videos")
    assert {(s, r): int(n) for s, r, n in shown} == statuses and len(shown) == len(statuses)
    by_rule = Counter((d["stage"], d["rule"], "dropped") for d in dropped)
    by_rule += Counter((f["stage"], f["reason"], "failed") for f in failures)
    rows = page.table("stage", "reason", "outcome", "clips", "videos")
    assert {(a, b, c): int(n) + int(m) for a, b, c, n, m in rows} == by_rule
    assert [r[1] for r in page.table(*DROPPED_VIDEO_HEAD)] == [
        v["reason"] for v in videos if v["status"] == "dropped"
    ]
    clips = [d for d in dropped if d["kind"] == "clip"]
    assert len(page.cards) == min(len(clips), MAX_DROPPED_THUMBS)
    assert len(page.dropped_imgs) == len(page.cards), "every source is there: every frame decodes"
    rules = {f"{d['rule']} ({d['stage']})" for d in clips}
    assert all(card[0] in rules for card in page.cards)


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _render(browser: str, page: Path, tmp: Path) -> tuple[str, list[str]]:
    """The DOM headless Chromium builds from `page` with the network blocked, and the URLs the
    page itself asked for (from the browser's net log; the browser's own background requests,
    initiator "not an origin", do not count)."""
    netlog = tmp / "net.json"
    cmd = [
        browser,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        f"--user-data-dir={tmp / 'profile'}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-extensions",
        "--disable-sync",
        "--proxy-server=127.0.0.1:9",  # nothing listens there: any fetch fails
        "--proxy-bypass-list=<-loopback>",  # loopback too
        f"--log-net-log={netlog}",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads(netlog.read_text(encoding="utf-8"))
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    asked = []
    for event in log["events"]:
        params = event.get("params") or {}
        if (
            types.get(event["type"]) == "URL_REQUEST_START_JOB"
            and "url" in params
            and params.get("initiator") != "not an origin"
        ):
            asked.append(params["url"])
    return proc.stdout, asked


def test_headless_chromium_renders_every_plot_offline(rich_page, rich_dir, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser on PATH (tried {', '.join(BROWSERS)})")
    # the check can see a page's fetch: a control page with a remote image is caught
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="http://example.invalid/x.png"></body></html>')
    (tmp_path / "c").mkdir()
    _, asked = _render(browser, control, tmp_path / "c")
    assert any("example.invalid" in url for url in asked), asked

    (tmp_path / "r").mkdir()
    dom, asked = _render(browser, rich_dir / "report.html", tmp_path / "r")
    assert asked == [], f"the report made requests: {asked}"
    _, page = rich_page
    shown = Page(dom)
    assert shown.svgs == page.svgs > 0
    assert shown.plots == page.plots, "every plot and bar survives the browser's parse"
    assert len(shown.imgs) == len(page.imgs) == 9
    assert shown.headings == page.headings
    assert EVIL in shown.captions and shown.tags["script"] == 0
