"""Training data from our shards: exact frame times, deterministic augmentation, bad clips."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from internvid.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from internvid.train import main
from internvid.train.data import ShardClips, crop_box, decode_at, expand_shards, segment_times

FPS = 10


def _gray_video(frames: int = 30, size: int = 64) -> bytes:
    """An mp4 whose frame k is uniformly grey at level 8 k (k < 30): times map to levels."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"}
        for k in range(frames):
            img = np.full((size, size, 3), 8 * k, dtype=np.uint8)
            img[: size // 4, : size // 4] = 255  # a bright corner: shows crops and flips
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def _write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _row(duration: float, start_shift: float) -> bytes:
    return json.dumps(
        {"duration": duration, "meta": json.dumps({"start_shift": start_shift})}
    ).encode()


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train_shards") / "shards"
    folder.mkdir()
    video = _gray_video()
    _write_tar(
        folder / "00000.tar",
        {
            "v.a_000001000_000002600.mp4": video,  # a dotted id; copy cut: file starts 1 s early
            "v.a_000001000_000002600.txt": b"a grey clip",
            "v.a_000001000_000002600.json": _row(1.6, 1.0),
            "nocap_0.mp4": video,
            "nocap_0.txt": b"",  # uncaptioned: left out
            "nocap_0.json": _row(3.0, 0.0),
        },
    )
    _write_tar(
        folder / "00001.tar",
        {
            "broken_0.mp4": b"\x00" * 4096,  # not a video
            "broken_0.txt": b"a broken clip",
            "broken_0.json": _row(3.0, 0.0),
            "whole_0.mp4": video,
            "whole_0.txt": b"the whole clip",
            "whole_0.json": b"{not json",  # unreadable row: the whole file is the clip
        },
    )
    return folder.parent


def _frame_numbers(frames: torch.Tensor) -> list[int]:
    """Which frame of `_gray_video` each (3, S, S) input frame is (nearest decoded grey level)."""
    with av.open(io.BytesIO(_gray_video())) as c:
        ref = np.array([f.to_ndarray(format="rgb24")[32:, 32:].mean() for f in c.decode(video=0)])
    return [int(np.abs(ref - level).argmin()) for level in _levels(frames)]


def _levels(frames: torch.Tensor) -> list[float]:
    """Mean grey level (0-255) of the bottom-right quarter of each (3, S, S) frame."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    s = frames.shape[-1]
    return [float(((f * std + mean) * 255)[:, s // 2 :, s // 2 :].mean()) for f in frames]


def test_index_reads_captions_windows_and_skips(shards: Path) -> None:
    assert [p.name for p in expand_shards(str(shards))] == ["00000.tar", "00001.tar"]
    data = ShardClips(str(shards), frames=4, size=32, train=False)
    keys = [s.key for s in data.clips]
    assert keys == ["v.a_000001000_000002600", "broken_0", "whole_0"]
    first = data.clips[0]
    assert (first.caption, first.start, first.duration) == ("a grey clip", 1.0, 1.6)
    assert (data.clips[2].start, data.clips[2].duration) == (0.0, 0.0)


def test_evaluation_takes_the_middle_of_each_segment(shards: Path) -> None:
    data = ShardClips(str(shards), frames=4, size=32, train=False)
    frames, caption = data[0]
    assert frames.shape == (4, 3, 32, 32) and caption == "a grey clip"
    # clip [1.0, 2.6) in 4 segments: middles 1.2, 1.6, 2.0, 2.4 s -> frames 12, 16, 20, 24
    assert _frame_numbers(frames) == [12, 16, 20, 24]
    assert segment_times(1.0, 1.6, 4, None) == pytest.approx([1.2, 1.6, 2.0, 2.4])
    # unknown window: the official middle-of-segment indices of all 30 frames: cuts
    # linspace(0, 30, 5).astype(int) = 0, 7, 15, 22, 30 -> (a + b - 1) // 2 = 3, 10, 18, 25
    whole, _ = data[2]
    assert _frame_numbers(whole) == [3, 10, 18, 25]


def test_training_draws_one_frame_per_segment_deterministically(shards: Path) -> None:
    data = ShardClips(str(shards), frames=4, size=32, train=True)
    a, _ = data.item(0, draw=7)
    b, _ = data.item(0, draw=7)
    assert torch.equal(a, b)  # same draw, same crop, flip and frames: resumes exactly
    seen = set()
    for draw in range(12):
        frames, _ = data.item(0, draw=draw)
        numbers = _frame_numbers(frames)
        for k, number in enumerate(numbers):  # segment k of [1.0, 2.6) is frames 10+4k .. 13+4k
            assert 10 + 4 * k <= number <= 13 + 4 * k, (draw, numbers)
        seen.add(tuple(numbers))
    assert len(seen) > 3  # the frames do vary from draw to draw


def test_crop_box_stays_inside_and_covers_the_area_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = crop_box(90, 160, rng)
        assert top >= 0 and top + h <= 90 and left >= 0 and left + w <= 160
        assert 0.5 * 90 * 160 * 0.9 <= h * w <= 90 * 160 * 1.01


def test_broken_clip_is_replaced_and_recorded(shards: Path) -> None:
    data = ShardClips(str(shards), frames=4, size=32, train=True)
    frames, caption = data.item(1, draw=0)  # broken_0 -> the next one
    assert caption == "the whole clip" and frames.shape == (4, 3, 32, 32)
    assert list(data.failures) == ["broken_0"]


def test_decode_at_past_the_end_gives_the_last_frame() -> None:
    frames = decode_at(_gray_video(), [99.0, 0.0, 0.05], 3)  # any order; 0.05 s: still frame 0
    with av.open(io.BytesIO(_gray_video())) as c:
        ref = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(ref) == 30
    assert [
        np.array_equal(a, b) for a, b in zip(frames, [ref[29], ref[0], ref[0]], strict=True)
    ] == [True] * 3


def test_train_on_shards_two_steps(shards: Path, tmp_path: Path) -> None:
    args = ["--data", str(shards), "--model", "tiny", "--frames", "4", "--image-size", "32"]
    result = main([*args, "--batch-size", "2", "--steps", "2", "--out", str(tmp_path)])
    assert len(result["losses"]) == 2 and all(np.isfinite(result["losses"]))
    # 4 draws over 3 clips reach the broken one: replaced, and recorded with its reason
    rows = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert [(r["item"], r["stage"], r["reason"]) for r in rows] == [
        ("broken_0", "train_data", "decode_error")
    ]
    again = main([*args, "--batch-size", "2", "--steps", "3", "--out", str(tmp_path), "--resume"])
    assert again["step"] == 3 and again["losses"][:2] == result["losses"]
    assert (tmp_path / "failures.jsonl").read_text().count("broken_0") == 1


def test_frame_shards_round_trip_and_resume(shards: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from internvid.cli import app

    out = tmp_path / "frames"
    args = ["train-frames", str(shards), str(out), "--frames", "16", "--short-side", "48"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["00000.tar", "00001.tar"]
    with tarfile.open(out / "00000.tar") as tar:
        names = tar.getnames()
    assert names[:2] == ["v.a_000001000_000002600.00.jpg", "v.a_000001000_000002600.01.jpg"]
    assert len(names) == 17 and names[-1] == "v.a_000001000_000002600.txt"  # no uncaptioned clip
    data = ShardClips(str(out), frames=4, size=32, train=False)
    assert [s.key for s in data.clips] == ["v.a_000001000_000002600", "whole_0"]  # broken: out
    assert data.clips[0].video is None and len(data.clips[0].frames) == 16
    frames, caption = data[0]
    assert frames.shape == (4, 3, 32, 32) and caption == "a grey clip"
    # 16 stored at the middles of 16 segments of [1.0, 2.6): 1.05, 1.15 ...; eval takes stored
    # 1, 5, 9, 13 -> 1.15, 1.55, 1.95, 2.35 s -> source frames 11, 15, 19, 23
    assert _frame_numbers(frames) == [11, 15, 19, 23]
    train = ShardClips(str(out), frames=4, size=32, train=True)
    a, _ = train.item(0, draw=3)
    assert torch.equal(a, train.item(0, draw=3)[0])
    for k, number in enumerate(_frame_numbers(a)):  # stored 4k .. 4k+3 -> frames 10+4k .. 13+4k
        assert 10 + 4 * k <= number <= 13 + 4 * k
    before = (out / "00000.tar").stat().st_mtime_ns
    (out / "00001.tar").unlink()  # as if interrupted before the second shard
    assert CliRunner().invoke(app, args).exit_code == 0
    assert (out / "00000.tar").stat().st_mtime_ns == before and (out / "00001.tar").is_file()


def test_frame_shards_take_a_config_file(shards: Path, tmp_path: Path) -> None:
    """train-frames --config: the file's settings, a flag over the file's value."""
    from typer.testing import CliRunner

    from internvid.cli import app

    config = tmp_path / "frames.yaml"
    config.write_text("frames: 3\nshort_side: 16\nquality: 50\n")
    out = tmp_path / "frames"
    args = ["train-frames", str(shards), str(out), "--config", str(config), "--short-side", "24"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with tarfile.open(out / "00000.tar") as tar:
        names = tar.getnames()
        first = tar.extractfile(names[0]).read()
    key = "v.a_000001000_000002600"
    assert names == [f"{key}.00.jpg", f"{key}.01.jpg", f"{key}.02.jpg", f"{key}.txt"]
    image = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    assert min(image.shape[:2]) == 24  # the flag's short side, not the file's 16


def _caption_shard(folder: Path, captions: dict[str, bytes]) -> Path:
    """A shard of clips with these captions (the video bytes are never decoded here)."""
    folder.mkdir(parents=True, exist_ok=True)
    members: dict[str, bytes] = {}
    for key, caption in captions.items():
        members[f"{key}.mp4"] = b"\x00" * 16
        members[f"{key}.txt"] = caption
    return _write_tar(folder / "00000.tar", members)


def test_captions_go_through_pre_text_and_short_ones_are_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from internvid.models.text import pre_text

    raw = {
        "a_0": b"A Dog, running-fast!",  # -> "a dog running fast"
        "b_0": b"Hello.",  # -> "hello": 1 word, left out as the official set does
        "c_0": b"(cats)  &  dogs/birds",  # -> "cats & dogs birds"
        "d_0": b"#!?",  # -> "": 0 words
    }
    shard = _caption_shard(tmp_path / "s", raw)
    with caplog.at_level("INFO", logger="internvid.train.data"):
        data = ShardClips(str(shard), frames=4, size=32)
    assert {s.key: s.caption for s in data.clips} == {
        "a_0": "a dog running fast",
        "c_0": "cats & dogs birds",
    }
    assert [s.caption for s in data.clips] == [pre_text(raw[s.key].decode()) for s in data.clips]
    assert data.skipped["short_caption"] == 2
    assert "2 clips from 1 shards (left out: short_caption 2)" in caplog.text
    off = ShardClips(str(shard), frames=4, size=32, pre_text=False, min_words=0)
    assert [s.caption for s in off.clips] == [raw[k].decode() for k in sorted(raw)]
    assert off.skipped["short_caption"] == 0
    with pytest.raises(ValueError, match="short_caption 4"):
        ShardClips(str(shard), frames=4, size=32, min_words=5)


def test_subset_is_the_official_seeded_draw(tmp_path: Path) -> None:
    import random

    keys = [f"clip_{i:02d}" for i in range(11)]
    captions = {k: f"clip number {i}".encode() for i, k in enumerate(keys)}
    captions["clip_03"] = b"short"  # filtered before the draw, as the official set does
    shard = _caption_shard(tmp_path / "s", captions)
    data = ShardClips(str(shard), frames=4, size=32, subset=0.5)
    # dataset/sqlite_dataset.py: filter, then random.seed(42); random.sample(annos, int(0.5 * n))
    kept = [k for k in keys if k != "clip_03"]
    state = random.getstate()
    try:
        random.seed(42)
        official = random.sample(kept, int(0.5 * len(kept)))
    finally:
        random.setstate(state)
    assert [s.key for s in data.clips] == official and len(official) == 5
    assert data.skipped == {
        "no_video": 0, "no_caption": 0, "bad_json": 0, "short_caption": 1, "not_in_subset": 5
    }  # fmt: skip
    again = ShardClips(str(shard), frames=4, size=32, subset=0.5)
    assert [s.key for s in again.clips] == official  # fixed: every run, every process
    other = ShardClips(str(shard), frames=4, size=32, subset=0.5, subset_seed=7)
    assert [s.key for s in other.clips] != official
    with pytest.raises(ValueError, match="subset"):
        ShardClips(str(shard), frames=4, size=32, subset=0.0)


def test_training_config_passes_the_caption_rules_and_subset(shards: Path) -> None:
    from internvid.train import TrainConfig, load_data

    cfg = TrainConfig(data=str(shards), frames=4, image_size=32, subset=0.5, min_caption_words=3)
    data = load_data(cfg)  # "a grey clip", "a broken clip", "the whole clip": 3 words each
    assert len(data) == 1 and data.skipped["not_in_subset"] == 2  # int(0.5 x 3) = 1 kept
    with pytest.raises(ValueError, match="short_caption 3"):
        load_data(TrainConfig(data=str(shards), min_caption_words=4))
    with pytest.raises(ValueError, match="shard data"):
        load_data(TrainConfig(subset=0.5))  # the synthetic shapes have no subset
