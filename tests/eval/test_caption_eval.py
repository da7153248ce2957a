"""`internvid caption-eval`: the caption metrics, compare(), clip sets and baselines, and the
whole harness on a tiny run of the sample videos (a baseline passes itself, degraded captions
fail it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from internvid.cli import app
from internvid.eval.caption_eval import (
    METRICS,
    CaptionEvalConfig,
    CaptionEvalError,
    EvalResult,
    Metrics,
    Thresholds,
    check_baseline,
    clip_set_from_run,
    compare,
    distinct_n,
    duplicate_flags,
    load_baseline,
    load_clip_set,
    read_captions,
    repetition,
    text_metrics,
    words,
    write_baseline,
    write_clip_set,
)

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}  # rich: one line per table row, no colour codes

# ------------------------------------------------------------------ the metrics, exactly


def test_words_are_lower_cased_runs_of_letters_and_digits():
    assert words("A man's dog, 2 cats.") == ["a", "man's", "dog", "2", "cats"]
    assert words("") == [] and words(" ... ") == []


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("a dog runs", 0.0),  # one 3-gram
        ("a dog", 0.0),  # under 3 words: no 3-gram
        ("", 0.0),
        ("dog dog dog dog", 0.5),  # (dog dog dog) twice: 2 grams, 1 distinct
        ("a b a b a b", 0.5),  # aba bab aba bab: 4 grams, 2 distinct
        ("A dog runs. a dog runs", 0.25),  # a-dog-runs, dog-runs-a, runs-a-dog, a-dog-runs
        ("x x x x x x", 0.75),  # 4 grams, 1 distinct
    ],
)
def test_repetition_is_the_share_of_repeated_3grams(caption, expected):
    assert repetition(caption) == pytest.approx(expected)


def test_distinct_2_counts_bigrams_within_captions_across_the_set():
    # bigrams: (a dog) (dog runs) | (a dog) (dog sits) | none: 4 bigrams, 3 distinct
    assert distinct_n(["a dog runs", "a dog sits", "dog"], 2) == pytest.approx(0.75)
    # "runs a" across the caption boundary is no bigram
    assert distinct_n(["a dog", "runs a"], 2) == 1.0
    assert distinct_n(["dog", ""], 2) == 0.0


def test_duplicates_are_exact_equal_captions_of_other_clips():
    caps = ["A dog.", "a dog.", " A dog. ", "", "", "A cat."]
    # case counts ("a dog." differs), outer whitespace does not; empty ones never duplicate
    assert duplicate_flags(caps) == [True, False, True, False, False, False]


def test_text_metrics_of_a_hand_made_set():
    caps = ["a dog runs in the park", "a dog runs in the park", "dog dog dog dog", "", "cat"]
    m = text_metrics(caps, sims=[0.3, 0.2, 0.1, None, None])
    # 4 non-empty: words 6, 6, 4, 1; repetition 0, 0, 0.5, 0; duplicates: the first two
    # bigrams: 5 + 5 + 3 + 0 = 13; distinct: a-dog dog-runs runs-in in-the the-park dog-dog = 6
    assert m == Metrics(
        viclip_sim=pytest.approx(0.2),
        words=4.25,
        empty_rate=0.2,
        repetition=0.125,
        distinct_2=round(6 / 13, 6),
        duplicate_rate=0.5,
    )


def test_text_metrics_without_any_caption():
    m = text_metrics(["", "  "])
    assert m == Metrics(None, None, 1.0, None, 0.0, None)


# ------------------------------------------------------------------ compare() and baselines

BASE = {
    "viclip_sim": 0.30,
    "words": 10.0,
    "empty_rate": 0.0,
    "repetition": 0.02,
    "distinct_2": 0.80,
    "duplicate_rate": 0.10,
}


def _failed(current: dict, baseline: dict = BASE, t: Thresholds | None = None) -> list[str]:
    return [c.metric for c in compare(current, baseline, t) if not c.passed]


def test_the_baseline_itself_passes_and_every_check_is_there():
    checks = compare(BASE, BASE)
    assert [c.metric for c in checks] == list(METRICS)
    assert all(c.passed for c in checks)


def test_each_threshold_passes_at_its_value_and_fails_beyond_it():
    at = {  # each moved exactly by its default threshold: still passes
        "viclip_sim": 0.28,
        "words": 15.0,
        "empty_rate": 0.02,
        "repetition": 0.07,
        "distinct_2": 0.75,
        "duplicate_rate": 0.15,
    }
    assert _failed(at) == []
    assert _failed({**BASE, "words": 6.7}) == []  # 0.67x
    beyond = {
        "viclip_sim": 0.279,
        "words": 15.1,
        "empty_rate": 0.021,
        "repetition": 0.071,
        "distinct_2": 0.749,
        "duplicate_rate": 0.151,
    }
    assert _failed(beyond) == list(METRICS)
    assert _failed({**BASE, "words": 6.6}) == ["words"]


def test_improvements_pass():
    better = {
        "viclip_sim": 0.5,
        "words": 12.0,
        "empty_rate": 0.0,
        "repetition": 0.0,
        "distinct_2": 0.95,
        "duplicate_rate": 0.0,
    }
    assert _failed(better) == []


def test_thresholds_are_settable():
    t = Thresholds(similarity_drop=0.1, words_min_ratio=0.5, distinct_drop=0.0)
    assert _failed({**BASE, "viclip_sim": 0.21, "words": 5.0}, t=t) == []
    assert _failed({**BASE, "distinct_2": 0.7999}, t=t) == ["distinct_2"]


def test_missing_values():
    checks = {c.metric: c for c in compare({**BASE, "viclip_sim": None}, BASE)}
    assert not checks["viclip_sim"].passed and checks["viclip_sim"].note == "no value now"
    checks = {c.metric: c for c in compare(BASE, {**BASE, "words": None})}
    assert checks["words"].passed and "not checked" in checks["words"].note
    assert _failed({**BASE, "words": 0.0}, {**BASE, "words": 0.0}) == []


def test_bad_thresholds_are_refused():
    for bad in (Thresholds(similarity_drop=-1), Thresholds(words_min_ratio=1.2)):
        with pytest.raises(ValueError):
            bad.validate()


def _result(digest="d1", model="tiny:viclip", **metrics) -> EvalResult:
    return EvalResult(Metrics(**{**BASE, **metrics}), [], digest, model, "middle", "x", 0, 0)


def test_a_baseline_round_trips_and_holds_its_set_and_model(tmp_path):
    path = tmp_path / "base.json"
    written = write_baseline(_result(), path)
    loaded = load_baseline(path)
    assert loaded == written and loaded.metrics == Metrics(**BASE)
    assert json.loads(path.read_text())["format"] == "internvid-caption-baseline"
    assert all(c.passed for c in check_baseline(_result(), loaded))
    with pytest.raises(CaptionEvalError, match="clip set d1"):
        check_baseline(_result(digest="d2"), loaded)
    # another ViCLIP: the similarity is not comparable, the text metrics still are
    checks = check_baseline(_result(model="OpenGVLab/ViCLIP/ViClip-InternVid-10M-FLT.pth"), loaded)
    assert [c.metric for c in checks if not c.passed] == ["viclip_sim"]
    (tmp_path / "bad.json").write_text('{"metrics": {}}')
    with pytest.raises(CaptionEvalError, match="not a baseline"):
        load_baseline(tmp_path / "bad.json")


def test_the_config_loads_thresholds_from_yaml(tmp_path):
    from internvid.config import load_config

    (tmp_path / "c.yaml").write_text("models: tiny\nthresholds:\n  similarity_drop: 0.1\n")
    cfg = load_config(CaptionEvalConfig, tmp_path / "c.yaml")
    assert cfg.models == "tiny" and cfg.thresholds == Thresholds(similarity_drop=0.1)
    cfg.validate()


# ------------------------------------------------------------------ clip sets and captions


def _fake_run(tmp_path: Path, videos: int = 3, per_video: int = 3) -> Path:
    """A run folder whose clips.parquet lists clips of (empty, never decoded) video files."""
    from internvid.io.tables import clips_table, write_table_atomic
    from internvid.records import Clip

    src = tmp_path / "videos"
    src.mkdir()
    clips = []
    for v in range(videos):
        path = src / f"vid{v}.mp4"
        path.write_bytes(b"")
        for k in range(per_video):
            clip = Clip.new(f"vid{v}", 2.0 * k, 2.0 * k + 2, source=str(path), fps=25.0)
            clip.captions = {"fused": f"fused {v} {k}", "coarse": f"coarse {v} {k}"}
            clip.meta = {"start_frame": 50 * k, "end_frame": 50 * k + 50}
            clips.append(clip)
    run = tmp_path / "run"
    run.mkdir()
    write_table_atomic(clips_table(clips), run / "clips.parquet")
    return run


def test_a_clip_set_is_a_deterministic_draw_of_kept_clips(tmp_path):
    run = _fake_run(tmp_path)
    a = clip_set_from_run(run, 4, seed=0, root=tmp_path / "videos")
    assert len(a.clips) == 4 and a == clip_set_from_run(run, 4, seed=0, root=tmp_path / "videos")
    assert [c.clip_id for c in a.clips] == sorted(c.clip_id for c in a.clips)
    other = clip_set_from_run(run, 4, seed=1, root=tmp_path / "videos")
    assert other.digest != a.digest
    first = a.clips[0]
    assert first.video == f"{first.clip_id[:4]}.mp4"  # relative to the root
    assert (first.fps, first.end_frame - first.start_frame) == (25.0, 50)
    everything = clip_set_from_run(run, 100)  # fewer than asked: all, absolute paths
    assert len(everything.clips) == 9 and Path(everything.clips[0].video).is_absolute()


def test_a_clip_set_round_trips_and_resolves_relative_videos(tmp_path):
    run = _fake_run(tmp_path)
    made = clip_set_from_run(run, 5, seed=3, root=tmp_path / "videos")
    path = tmp_path / "videos" / "set.json"  # beside its videos
    write_clip_set(made, path)
    loaded = load_clip_set(path)
    assert loaded.clips == made.clips and loaded.digest == made.digest
    assert all(loaded.video_path(c).is_file() for c in loaded.clips)  # the file's folder
    moved = load_clip_set(path, root=tmp_path / "elsewhere")
    assert moved.digest == made.digest  # the digest is of the set, not of where it lies
    assert moved.video_path(moved.clips[0]).parent == tmp_path / "elsewhere"
    path.write_text(json.dumps({"format": "internvid-clip-set", "clips": [{"clip_id": "x"}]}))
    with pytest.raises(CaptionEvalError, match="clip 0"):
        load_clip_set(path)


def test_captions_come_from_a_run_or_a_jsonl(tmp_path):
    run = _fake_run(tmp_path, videos=1, per_video=2)
    ids = sorted(read_captions(run))
    assert read_captions(run) == {ids[0]: "fused 0 0", ids[1]: "fused 0 1"}
    assert read_captions(run, "coarse")[ids[1]] == "coarse 0 1"
    with pytest.raises(CaptionEvalError, match="no paper_caption column"):
        read_captions(run, "paper")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(
        '{"clip_id": "a", "caption": "one"}\n\n{"clip_id": "b", "caption": null}\n'
        '{"clip_id": "a", "caption": "two", "model": "other"}\n'
    )
    assert read_captions(jsonl) == {"a": "two", "b": ""}
    jsonl.write_text('{"clip_id": "a"}\nnot json\n')
    with pytest.raises(CaptionEvalError, match=r"c\.jsonl:2"):
        read_captions(jsonl)
    with pytest.raises(CaptionEvalError, match="neither a run folder"):
        read_captions(tmp_path / "missing.jsonl")


@pytest.mark.allow_error_logs
def test_nothing_to_score_exits_non_zero(tmp_path):
    run = _fake_run(tmp_path)
    clipset = tmp_path / "set.json"
    made = runner.invoke(
        app, ["caption-eval", str(clipset), "--make-set", str(run), "--clips", "3"]
    )
    assert made.exit_code == 0, made.output
    assert len(json.loads(clipset.read_text())["clips"]) == 3
    other = tmp_path / "other.jsonl"
    other.write_text('{"clip_id": "not_in_the_set", "caption": "a dog"}\n')
    res = runner.invoke(
        app, ["caption-eval", str(clipset), "--captions", str(other), "--models", "tiny"], env=ENV
    )
    assert res.exit_code == 1 and "nothing could be scored" in res.output, res.output
    # the videos are empty files: no frames, nothing scored (checked before the model loads)
    res = runner.invoke(
        app, ["caption-eval", str(clipset), "--captions", str(run), "--models", "tiny"], env=ENV
    )
    assert res.exit_code == 1 and "no video of the clip set" in res.output, res.output
    res = runner.invoke(app, ["caption-eval", str(clipset)], env=ENV)  # nothing to judge
    assert res.exit_code == 2, res.output


# ------------------------------------------------------------------ the harness, end to end

SAMPLES = ("cosmos_clip_10s", "nasa_13013", "internvid_example1")  # 7 clips, ~15 s to run


def _eval(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, ["caption-eval", *map(str, args), "--models", "tiny"], env=ENV)
    return res.exit_code, res.output


@pytest.mark.integration
@pytest.mark.allow_error_logs
def test_a_baseline_passes_itself_and_degraded_captions_fail(real_videos, tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["run", *(str(real_videos / f"{n}.mp4") for n in SAMPLES), "--out", str(run),
         "--models", "tiny", "--scores", "viclip_sim", "--cut-mode", "none", "--no-progress"],
        env=ENV,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    clipset, base = tmp_path / "set.json", tmp_path / "base.json"
    code, out = _eval(clipset, "--make-set", run, "--clips", 6, "--root", real_videos)
    assert code == 0, out
    data = json.loads(clipset.read_text())
    assert len(data["clips"]) == 6 and not Path(data["clips"][0]["video"]).is_absolute()

    code, out = _eval(clipset, "--root", real_videos, "--captions", run, "--write-baseline", base)
    assert code == 0, out
    baseline = load_baseline(base)
    assert baseline.model == "tiny:viclip" and baseline.clips == 6
    assert baseline.metrics.viclip_sim is not None and baseline.metrics.empty_rate == 0.0
    # the degraded captions below fail "words" only against captions of 5+ words on average
    assert baseline.metrics.words >= 5.0, baseline.metrics

    # the same captions, as a JSONL (another captioner's output), pass their own baseline
    ids = [c["clip_id"] for c in data["clips"]]
    captions = read_captions(run)
    same = tmp_path / "same.jsonl"
    same.write_text("".join(json.dumps({"clip_id": i, "caption": captions[i]}) + "\n" for i in ids))
    code, out = _eval(clipset, "--root", real_videos, "--captions", same, "--baseline", base)
    assert code == 0, out
    assert "FAIL" not in out
    for metric in METRICS:
        assert any(metric in line and "pass" in line for line in out.splitlines()), metric

    # degraded: two clips empty, the others cut to two words or one word repeated, each caption
    # shared by several clips. The tiny ViCLIP has random weights, so its similarity is noise
    # and may pass or fail: the degraded set must fail on the text metrics.
    bad = ["", ""] + ["a dog" if k % 2 else "dog dog dog dog" for k in range(len(ids) - 2)]
    degraded = tmp_path / "degraded.jsonl"
    degraded.write_text(
        "".join(
            json.dumps({"clip_id": i, "caption": c}) + "\n" for i, c in zip(ids, bad, strict=True)
        )
    )
    report = tmp_path / "report.json"
    code, out = _eval(
        clipset, "--root", real_videos, "--captions", degraded, "--baseline", base, "--out", report
    )
    assert code == 1, out
    text_metrics_failed = {"words", "empty_rate", "repetition", "distinct_2", "duplicate_rate"}
    got = json.loads(report.read_text())
    assert text_metrics_failed <= set(got["failed"]) and not got["passed"]
    assert got["metrics"]["empty_rate"] == pytest.approx(2 / 6)
    assert got["metrics"]["duplicate_rate"] == 1.0
    for metric in text_metrics_failed:  # the table names each failed metric
        assert any(metric in line and "FAIL" in line for line in out.splitlines()), metric
