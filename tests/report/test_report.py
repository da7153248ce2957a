"""`internvid report`: every section, inline SVG plots with known counts, escaped captions, no network."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
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
from internvid.io.tables import clips_table, read_clips
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
        if tag in ("h2", "style") or (tag == "p" and "caption" in classes):
            self._grab, self._buf = tag, []
        elif self._in_dropped_card and tag in ("p", "div"):
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
