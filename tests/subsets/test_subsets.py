"""Subsets: DIV / random equal NumPy's own draw, FLT / Aes / --where counts, both inputs."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from internvid.io.release import ReleaseRow, iter_release_rows, row_from_clip
from internvid.io.tables import CLIP_SCHEMA, row_to_clip
from internvid.records import format_timecode
from internvid.subsets import (
    Rng,
    Rule,
    SubsetError,
    SubsetSpec,
    choice_runs,
    div_choice,
    make_subset,
    reference_choice,
    register,
    uniform_choice,
)

N_CLIPS = 100_000  # clips in the synthetic table
N_VIDEOS = 5_000  # videos they come from
SAMPLE_ROWS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "internvid" / "sample_rows.jsonl"
)


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 11-character YouTube-like ids."""
    alphabet = np.frombuffer(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", "S1"
    )
    ids = alphabet[rng.integers(0, 64, (n, 11))].view("S11").ravel().astype(str)
    assert len(set(ids)) == n
    return ids


def _synthetic(
    seed: int = 0, n: int = N_CLIPS, videos: int = N_VIDEOS, skew: float = 0.0
) -> dict[str, np.ndarray]:
    """Columns of a synthetic clip table; NaN marks an absent score, "" an absent caption.

    `skew` > 0: clips per video spread like the release's (lognormal popularity of that sigma:
    most videos have a few clips, some hundreds); 0: about n / videos each.
    """
    rng = np.random.default_rng(seed)
    if skew > 0:
        popularity = rng.lognormal(0.0, skew, videos)
        vids = _ids(rng, videos)[rng.choice(videos, n, p=popularity / popularity.sum())]
    else:
        vids = _ids(rng, videos)[rng.integers(0, videos, n)]
    start_ms = rng.permutation(n).astype(np.int64) * 10  # distinct: clip ids stay unique
    dur_ms = np.clip(np.exp(rng.normal(1.8, 1.3, n)) * 1000, 100, 600_000).astype(np.int64)
    cols = {
        "video_id": vids,
        "start_ms": start_ms,
        "end_ms": start_ms + dur_ms,
        "viclip_sim": rng.normal(0.35, 0.05, n).round(6),
        "aesthetic": rng.normal(4.6, 0.7, n).round(6),
        "clipscore": rng.normal(0.3, 0.04, n).round(6),
        "text_overlay": rng.random(n).round(4),
    }
    for name, frac in (("viclip_sim", 0.05), ("aesthetic", 0.03), ("clipscore", 0.5)):
        cols[name][rng.random(n) < frac] = np.nan
    words = np.array(["a dog", "a man", "the sea", "cooking", "dancing", 'say "hi"', "über"])
    captions = np.char.add(
        np.char.add(words[rng.integers(0, 7, n)], " and "), words[rng.integers(0, 7, n)]
    )
    captions[rng.random(n) < 0.02] = ""
    captions[:3] = ["ctl \x1f \x0b char", "tab\there\nnewline", "漢字 😀 \\ slash/"]
    cols["caption"] = captions
    return cols


def _clip_ids(c: dict[str, np.ndarray]) -> np.ndarray:
    def hms(ms: np.ndarray) -> list[str]:
        return [format_timecode(int(x)).replace(":", "").replace(".", "") for x in ms]

    return np.array(
        [
            f"{v}_{a}_{b}"
            for v, a, b in zip(c["video_id"], hms(c["start_ms"]), hms(c["end_ms"]), strict=True)
        ]
    )


def _map(keys: list[str], values: list[np.ndarray], present: list[np.ndarray], type_: pa.DataType):
    """A MapArray, row i holding keys[j] -> values[j][i] where present[j][i] (sorted keys)."""
    mask = np.stack(present, axis=1)  # (rows, keys)
    offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    k = np.broadcast_to(np.array(keys), mask.shape)[mask]
    v = np.stack(values, axis=1)[mask]
    return pa.MapArray.from_arrays(offsets, pa.array(k, pa.string()), pa.array(v, type_))


def _write_parquet(c: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The synthetic table as a clips.parquet; returns the clip ids."""
    n = len(c["video_id"])
    clip_ids = _clip_ids(c)
    score_keys = ["aesthetic", "clipscore", "text_overlay", "viclip_sim"]
    scores = _map(
        score_keys,
        [c[k] for k in score_keys],
        [~np.isnan(c[k]) for k in score_keys],
        pa.float64(),
    )
    has_caption = c["caption"] != ""
    fused = has_caption & (np.arange(n) % 10 != 0)
    captions = _map(
        ["coarse", "fused"],
        [c["caption"], c["caption"]],
        [has_caption & ~fused, fused],
        pa.string(),
    )
    meta = np.where(np.arange(n) % 7 == 0, '{"release_umt_key": "UMT-SIM"}', "{}")
    table = pa.table(
        {
            "clip_id": clip_ids,
            "video_id": c["video_id"],
            "start": c["start_ms"] / 1000,
            "end": c["end_ms"] / 1000,
            "duration": (c["end_ms"] - c["start_ms"]) / 1000,
            "source": np.char.add("/videos/", c["video_id"]),
            "fps": np.full(n, 30.0),
            "width": np.full(n, 640, np.int32),
            "height": np.full(n, 360, np.int32),
            "captions": captions,
            "scores": scores,
            "frame_captions": pa.ListArray.from_arrays(
                np.zeros(n + 1, np.int32), pa.array([], pa.string())
            ),
            "meta": meta,
            "status": np.full(n, "split"),
            "shard": pa.nulls(n, pa.int32()),
        }
    ).cast(CLIP_SCHEMA)
    pq.write_table(table, path)
    return clip_ids


def _release_lines(c: dict[str, np.ndarray], rows: np.ndarray) -> list[str]:
    """Release JSON lines of `rows`, even rows with UMT_Score, odd ones with UMT-SIM."""
    lines = []
    for i in rows:
        obj = {
            "YoutubeID": str(c["video_id"][i]),
            "Start_timestamp": format_timecode(int(c["start_ms"][i])),
            "End_timestamp": format_timecode(int(c["end_ms"][i])),
        }
        if c["caption"][i]:
            obj["Caption"] = str(c["caption"][i])
        if not np.isnan(c["aesthetic"][i]):
            obj["Aesthetic_Score"] = float(c["aesthetic"][i])
        if not np.isnan(c["viclip_sim"][i]):
            obj["UMT_Score" if i % 2 == 0 else "UMT-SIM"] = float(c["viclip_sim"][i])
        lines.append(json.dumps(obj, ensure_ascii=False))
    return lines


def _canonical(c: dict[str, np.ndarray], clip_ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`rows` in the documented order: video_id, start, end, clip_id."""
    keys = (clip_ids[rows], c["end_ms"][rows], c["start_ms"][rows], c["video_id"][rows])
    return rows[np.lexsort(keys)]


def _div_reference(
    c: dict[str, np.ndarray],
    clip_ids: np.ndarray,
    rows: np.ndarray,
    size: int,
    seed: int = 42,
    generator: bool = False,
) -> set[str]:
    """The clip ids the release's DIV draw picks from candidate `rows` (in canonical order);
    `generator`: what `np.random.default_rng(seed).choice` picks instead."""
    rows = _canonical(c, clip_ids, rows)
    _, inverse, counts = np.unique(c["video_id"][rows], return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    if generator:
        p = weights / weights.sum()
        picked = np.random.default_rng(seed).choice(weights.size, size, replace=False, p=p)
    else:
        picked = _release_draw(weights, size, seed)
    return set(clip_ids[rows[picked]])


def _release_draw(weights: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Data/InternVid/div_sampling.py's draw, as it is written there: NumPy's global legacy
    generator (`np.random.seed`, then `np.random.choice` with p = w / w.sum())."""
    state = np.random.get_state()  # leave NumPy's global stream as we found it
    try:
        np.random.seed(seed)
        p = weights / weights.sum()
        return np.random.choice(len(weights), size, replace=False, p=p)
    finally:
        np.random.set_state(state)


@pytest.fixture(scope="module")
def skewed(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    """100k clips of 13,828 videos, 1 to several hundred clips each."""
    folder = tmp_path_factory.mktemp("skewed")
    c = _synthetic(seed=5, videos=20_000, skew=1.5)
    clip_ids = _write_parquet(c, folder / "clips.parquet")
    return c, clip_ids, folder


@pytest.fixture(scope="module")
def table(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    folder = tmp_path_factory.mktemp("run")
    c = _synthetic()
    clip_ids = _write_parquet(c, folder / "clips.parquet")
    return c, clip_ids, folder


def _out_ids(prefix: Path) -> list[str]:
    return pq.read_table(prefix.with_name(prefix.name + ".parquet"), columns=["clip_id"])[
        "clip_id"
    ].to_pylist()


# --- the sampler ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1 << 22, 1000, 129])
def test_div_choice_is_numpys_draw(chunk_rows: int) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 60, 2000)
    weights = np.repeat(1.0 / counts, counts)
    for size in (1, 5000, int(counts.sum()) - 3):  # the last needs many rounds
        got = div_choice(counts, size, 42, chunk_rows=chunk_rows)  # default: legacy
        np.testing.assert_array_equal(got, _release_draw(weights, size, 42))  # order too
        got = div_choice(counts, size, 42, "generator", chunk_rows=chunk_rows)
        want = np.random.default_rng(42).choice(
            weights.size, size, replace=False, p=weights / weights.sum()
        )
        np.testing.assert_array_equal(got, want)


def test_div_choice_is_the_release_draw_on_skewed_counts() -> None:
    """100k rows, clips per video from 1 to hundreds; seeds and sizes up to N = rows - 3."""
    rng = np.random.default_rng(11)
    popularity = rng.lognormal(0.0, 1.5, 15_000)
    counts = rng.multinomial(100_000 - 15_000, popularity / popularity.sum()) + 1
    assert counts.sum() == 100_000 and counts.min() == 1 and counts.max() > 150
    weights = np.repeat(1.0 / counts, counts)
    for seed, size in ((42, 10_000), (0, 1), (7, 60_000), (2**32 - 1, 99_997)):
        got = div_choice(counts, size, seed, chunk_rows=1 << 14)
        np.testing.assert_array_equal(got, _release_draw(weights, size, seed), err_msg=str(seed))
    with pytest.raises(ValueError, match="seeds"):
        div_choice(counts, 5, 2**32)
    assert div_choice(counts, 5, 2**32, Rng.generator).size == 5


def test_choice_runs_general_weights_and_uniform() -> None:
    rng = np.random.default_rng(4)
    lengths = rng.integers(0, 30, 500)  # empty runs too
    values = rng.random(500) * 10.0 ** rng.integers(-3, 3, 500)
    weights = np.repeat(values, lengths)
    got = choice_runs(lengths, values, 3000, 7, chunk_rows=777)
    np.testing.assert_array_equal(got, _release_draw(weights, 3000, 7))
    np.testing.assert_array_equal(got, reference_choice(weights, 3000, 7))
    got = choice_runs(lengths, values, 3000, 7, "generator", chunk_rows=777)
    np.testing.assert_array_equal(got, reference_choice(weights, 3000, 7, "generator"))
    got = uniform_choice(50_000, 20_000, 9, chunk_rows=4096)
    np.testing.assert_array_equal(got, _release_draw(np.ones(50_000), 20_000, 9))
    assert uniform_choice(10, 0).size == 0
    with pytest.raises(ValueError):
        uniform_choice(10, 11)


# --- rules on a clips.parquet ---------------------------------------------------------------------


def test_div_selects_the_reference_draw(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    result = make_subset(run, tmp_path / "div", SubsetSpec(Rule.div, size=10_000))
    got = _out_ids(tmp_path / "div")
    assert len(got) == len(set(got)) == result.rows == 10_000
    assert set(got) == _div_reference(c, clip_ids, np.arange(N_CLIPS), 10_000)
    assert result.summary() == f"DIV 10,000 of {N_CLIPS:,}"
    assert got == list(clip_ids[_canonical(c, clip_ids, np.flatnonzero(np.isin(clip_ids, got)))])
    assert not list(tmp_path.glob(".*")), "temp files or the work folder were left behind"

    # the release lines are what ReleaseWriter would write for the same clips
    rows = pq.read_table(tmp_path / "div.parquet").to_pylist()
    lines = (tmp_path / "div.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [
        json.dumps(row_from_clip(row_to_clip(r)).to_json(), ensure_ascii=False) for r in rows
    ]


def test_div_is_the_release_draw_on_a_skewed_run(skewed, tmp_path: Path) -> None:
    """`internvid subset div --seed 42` picks the clips `np.random.seed(42); np.random.choice`
    picks over the same rows: 100k clips, 1 to hundreds a video, N up to all but 5."""
    c, clip_ids, run = skewed
    counts = np.unique(c["video_id"], return_counts=True)[1]
    assert counts.size > 13_000 and counts.min() == 1 and counts.max() > 100
    everything = np.arange(N_CLIPS)
    out = tmp_path / "cli"
    args = ["subset", "div", str(run), "-n", "10000", "--seed", "42", "-o", str(out)]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    assert set(_out_ids(out)) == _div_reference(c, clip_ids, everything, 10_000, 42)
    for seed, size in ((3, 1), (9, 50_000), (123, N_CLIPS - 5)):  # the last: many rounds
        make_subset(run, tmp_path / f"s{seed}", SubsetSpec(Rule.div, size=size, seed=seed))
        want = _div_reference(c, clip_ids, everything, size, seed)
        assert set(_out_ids(tmp_path / f"s{seed}")) == want, seed
    # --rng generator: np.random.default_rng(42).choice, a different sample of the same rows
    res = CliRunner().invoke(_app(), [*args[:-1], str(tmp_path / "gen"), "--rng", "generator"])
    assert res.exit_code == 0, res.output
    generated = set(_out_ids(tmp_path / "gen"))
    assert generated == _div_reference(c, clip_ids, everything, 10_000, 42, generator=True)
    assert generated != set(_out_ids(out))


def test_flt_counts_and_draw(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    spec = SubsetSpec(Rule.flt, size=5_000)
    result = make_subset(run / "clips.parquet", tmp_path / "flt", spec)
    dur = (c["end_ms"] - c["start_ms"]) / 1000
    in_range = (dur >= 1) & (dur <= 120)
    scored = in_range & ~np.isnan(c["viclip_sim"])
    k = math.floor(0.3 * scored.sum())
    rows = np.flatnonzero(scored)
    ranked = rows[
        np.lexsort(
            (
                clip_ids[rows],
                c["end_ms"][rows],
                c["start_ms"][rows],
                c["video_id"][rows],
                -c["viclip_sim"][rows],
            )
        )
    ]
    top = ranked[:k]
    assert [(s.label, s.removed) for s in result.steps] == [
        ("duration 1-120 s", N_CLIPS - in_range.sum()),
        ("no viclip_sim", in_range.sum() - scored.sum()),
        ("top 30% by viclip_sim", scored.sum() - k),
        ("DIV", k - 5_000),
    ]
    assert result.summary().endswith(f"DIV 5,000 of {k:,}")
    assert set(_out_ids(tmp_path / "flt")) == _div_reference(c, clip_ids, top, 5_000)


def test_flt_other_score(table, tmp_path: Path) -> None:
    c, _, run = table
    result = make_subset(
        run, tmp_path / "f", SubsetSpec(Rule.flt, size=100, score="clipscore", top_fraction=0.5)
    )
    dur = (c["end_ms"] - c["start_ms"]) / 1000
    scored = ((dur >= 1) & (dur <= 120) & ~np.isnan(c["clipscore"])).sum()
    assert result.steps[2].label == "top 50% by clipscore"
    assert result.steps[2].after == scored // 2


def test_aes_counts(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    result = make_subset(run, tmp_path / "aes", SubsetSpec(Rule.aes))
    keep = c["aesthetic"] >= 4  # NaN (absent) compares False
    assert result.rows == keep.sum()
    assert set(_out_ids(tmp_path / "aes")) == set(clip_ids[keep])
    assert result.summary() == f"aesthetic >= 4: -{N_CLIPS - keep.sum():,}"

    result = make_subset(
        run, tmp_path / "aes2", SubsetSpec(Rule.aes, min_aesthetic=4.5, max_text_overlay=0.2)
    )
    keep2 = (c["aesthetic"] >= 4.5) & (c["text_overlay"] <= 0.2)
    assert [s.after for s in result.steps] == [(c["aesthetic"] >= 4.5).sum(), keep2.sum()]
    assert set(_out_ids(tmp_path / "aes2")) == set(clip_ids[keep2])


def test_where_and_random(table, tmp_path: Path) -> None:
    c, clip_ids, run = table
    where = "duration < 5 AND caption LIKE 'a dog%' AND viclip_sim > 0.3"
    result = make_subset(run, tmp_path / "w", SubsetSpec(Rule.where, where=where))
    dur = (c["end_ms"] - c["start_ms"]) / 1000
    keep = (dur < 5) & np.char.startswith(c["caption"], "a dog") & (c["viclip_sim"] > 0.3)
    assert result.rows == keep.sum() > 0
    assert set(_out_ids(tmp_path / "w")) == set(clip_ids[keep])
    assert make_subset(run, tmp_path / "none", SubsetSpec(Rule.where, where="false")).rows == 0
    assert (tmp_path / "none.jsonl").read_bytes() == b""
    assert pq.read_table(tmp_path / "none.parquet").schema == CLIP_SCHEMA

    # random: uniform over the rows left by --where, in canonical order
    result = make_subset(
        run, tmp_path / "r", SubsetSpec(Rule.random, size=500, where="duration < 5", seed=1)
    )
    rows = _canonical(c, clip_ids, np.flatnonzero(dur < 5))
    expected = clip_ids[rows[reference_choice(np.ones(rows.size), 500, 1)]]
    assert set(_out_ids(tmp_path / "r")) == set(expected)
    assert (
        result.summary()
        == f"where duration < 5: -{(dur >= 5).sum():,}; random 500 of {rows.size:,}"
    )


# --- release metadata input -----------------------------------------------------------------------


def test_release_jsonl_input(table, tmp_path: Path) -> None:
    c, clip_ids, _ = table
    rows = np.arange(20_000)
    lines = _release_lines(c, rows)
    lines.insert(
        5,
        '{"YoutubeID": "bad id!", "Start_timestamp": "00:00:01.000", "End_timestamp": "00:00:02.000"}',
    )
    lines.insert(
        9, '{"YoutubeID": "x", "Start_timestamp": "0:00:01.000", "End_timestamp": "00:00:02.000"}'
    )
    src = tmp_path / "release.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = make_subset(src, tmp_path / "div", SubsetSpec(Rule.div, size=2_000))
    assert result.rows_in == 20_002
    assert [(s.label, s.removed) for s in result.steps[:1]] == [("malformed rows", 2)]
    assert set(_out_ids(tmp_path / "div")) == _div_reference(c, clip_ids, rows, 2_000)
    out_lines = (tmp_path / "div.jsonl").read_text(encoding="utf-8").splitlines()
    assert set(out_lines) <= set(lines)  # byte-identical rows, with the UMT key each row used
    assert any('"UMT-SIM"' in x for x in out_lines) and any('"UMT_Score"' in x for x in out_lines)
    assert [r.youtube_id for r in iter_release_rows(tmp_path / "div.jsonl")] == pq.read_table(
        tmp_path / "div.parquet"
    )["video_id"].to_pylist()

    # FLT on release input ranks by the UMT score, whichever key spelled it
    result = make_subset(src, tmp_path / "flt", SubsetSpec(Rule.flt, size=500))
    dur = (c["end_ms"][rows] - c["start_ms"][rows]) / 1000
    scored = ((dur >= 1) & (dur <= 120) & ~np.isnan(c["viclip_sim"][rows])).sum()
    assert result.steps[3].label == "top 30% by umt" and result.steps[3].after == math.floor(
        0.3 * scored
    )

    result = make_subset(src, tmp_path / "aes", SubsetSpec(Rule.aes))
    assert result.rows == (c["aesthetic"][rows] >= 4).sum()
    with pytest.raises(SubsetError, match="viclip_sim"):
        make_subset(src, tmp_path / "x", SubsetSpec(Rule.flt, size=5, score="viclip_sim"))


def test_release_sample_rows_round_trip(tmp_path: Path) -> None:
    if not SAMPLE_ROWS.is_file():
        pytest.skip(f"{SAMPLE_ROWS} not found")
    src = tmp_path / "sample.jsonl.gz"
    src.write_bytes(gzip.compress(SAMPLE_ROWS.read_bytes()))
    result = make_subset(src, tmp_path / "out", SubsetSpec(Rule.aes))
    assert result.rows == 3
    expected = sorted(
        SAMPLE_ROWS.read_text(encoding="utf-8").splitlines(),
        key=lambda x: json.loads(x)["YoutubeID"],
    )
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines() == expected
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    first = ReleaseRow.from_json(json.loads(expected[0]))
    assert rows[0]["clip_id"] == "9VlPZ9heX70_000231651_000341121"
    assert dict(rows[0]["scores"]) == {"aesthetic": first.aesthetic_score, "umt": first.umt_score}
    assert dict(rows[0]["captions"]) == {"release": first.caption}


# --- errors and the command -----------------------------------------------------------------------


def test_bad_options(table, tmp_path: Path) -> None:
    _, _, run = table
    with pytest.raises(SubsetError, match="-n"):
        make_subset(run, tmp_path / "x", SubsetSpec(Rule.div))
    with pytest.raises(SubsetError, match="only"):
        make_subset(run, tmp_path / "x", SubsetSpec(Rule.div, size=N_CLIPS + 1))
    with pytest.raises(SubsetError, match="seeds 0"):
        make_subset(run, tmp_path / "x", SubsetSpec(Rule.div, size=5, seed=2**32))
    with pytest.raises(SubsetError, match="--rng"):
        make_subset(run, tmp_path / "x", SubsetSpec(Rule.div, size=5, rng="mt"))  # type: ignore[arg-type]
    with pytest.raises(SubsetError, match="no such file"):
        make_subset(tmp_path / "missing.jsonl", tmp_path / "x", SubsetSpec(Rule.aes))
    assert not list(tmp_path.iterdir())


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def test_cli(table, tmp_path: Path) -> None:
    _, _, run = table
    out = tmp_path / "sub" / "div"
    res = CliRunner().invoke(
        _app(),
        [
            "subset",
            "div",
            str(run),
            "-n",
            "1000",
            "--out",
            str(out),
            "--memory-limit",
            "1GB",
            "--threads",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"DIV 1,000 of {N_CLIPS:,}" in res.output
    assert len(_out_ids(out)) == 1000 and out.with_suffix(".jsonl").is_file()


@pytest.mark.allow_error_logs
def test_cli_bad_input_exits_2(table, tmp_path: Path) -> None:
    _, _, run = table
    app = _app()
    res = CliRunner().invoke(
        app,
        ["subset", "where", str(run), "--where", "no_such_column > 1", "-o", str(tmp_path / "x")],
    )
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["subset", "flt", str(run), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert not list(tmp_path.iterdir())
