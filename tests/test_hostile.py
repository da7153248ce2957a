"""Hostile or broken input ends in one logged line and a documented exit code, never a traceback:
a disk that fills up, YAML tags in a config, a pickle as a checkpoint, URL schemes, a huge
--workers, and tar member names that try to leave the output folder."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from internvid.outcome import EXIT_NOTHING, EXIT_OK, EXIT_USAGE

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
    "COLUMNS": "400",  # rich wraps log lines at the terminal width
}


def internvid(
    *args: str, cwd: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "internvid", *args],
        env=ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in f" {line} "]


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


class Pwn:
    """Unpickled, this would run a shell command: what a hostile file hopes for."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt || exit 1"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_disk_full_is_one_line_and_exit_1(tmp_path: Path, demo_videos: Path) -> None:
    if not _unshare_works():
        pytest.skip("needs `unshare -rm` and tmpfs mounts in a user namespace (a 64 KiB disk)")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {disk} && exec {sys.executable} -m internvid run "
        f"{demo_videos / 'demo_c.mp4'} --out {disk / 'out'} --models none --collect off "
        "--no-progress"
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    no_traceback(proc)
    assert proc.returncode == EXIT_NOTHING, proc.stderr
    [line] = [x for x in error_lines(proc.stderr) if "disk full" in x]
    assert "free space" in line


def test_a_yaml_tag_in_a_config_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    config = tmp_path / "evil.yaml"
    config.write_text(f'workers: !!python/object/apply:os.system ["touch {marker}"]\n')
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    for command in (["run", str(video), "--out", str(tmp_path / "out")], ["score", str(tmp_path)]):
        proc = internvid(*command, "--config", str(config))
        no_traceback(proc)
        assert proc.returncode == EXIT_USAGE, proc.stderr
        text = " ".join(proc.stderr.split())
        assert "refused by the safe YAML loader" in text
        assert "python/object/apply:os.system" in text
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_pickle_as_a_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Pwn(marker), "step": 1}))
    out = tmp_path / "train"
    proc = internvid(
        "train", "--model", "tiny", "--steps", "1", "--num-samples", "8", "--batch-size", "2",
        "--device", "cpu", "--out", str(out), "--resume-from", str(evil),
    )  # fmt: skip
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    [line] = [x for x in error_lines(proc.stderr) if "refused to load the checkpoint" in x]
    assert "weights_only=True" in line
    assert not marker.exists()


def test_file_urls_are_local_paths_and_other_schemes_fail(
    tmp_path: Path, demo_videos: Path
) -> None:
    video = demo_videos / "demo_c.mp4"
    proc = internvid(
        "run", video.as_uri(), "nosuchscheme://bucket/clip.mp4", "--out", str(tmp_path / "out"),
        "--models", "none", "--collect", "off", "--cut-mode", "none", "--no-progress",
    )  # fmt: skip
    no_traceback(proc)
    assert proc.returncode == EXIT_OK, proc.stderr
    videos = tmp_path / "out" / "videos.parquet"
    import pyarrow.parquet as pq

    rows = {r["source"]: (r["status"], r["reason"]) for r in pq.read_table(videos).to_pylist()}
    assert rows == {
        str(video): ("ok", None),
        "nosuchscheme://bucket/clip.mp4": ("failed", "unsupported_scheme"),
    }
    failures = [
        json.loads(x) for x in (tmp_path / "out" / "failures.jsonl").read_text().split("\n") if x
    ]
    assert [(f["item"], f["reason"]) for f in failures] == [
        ("nosuchscheme://bucket/clip.mp4", "unsupported_scheme")
    ]


def test_workers_above_the_bound_are_refused(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    proc = internvid("run", str(video), "--out", str(tmp_path / "out"), "--workers", "100000")
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert [x for x in error_lines(proc.stderr) if "workers must be <= 256" in x]
    assert not (tmp_path / "out").exists()
    config = tmp_path / "w.yaml"
    config.write_text("workers: 257\n")
    proc = internvid("download", str(video), "--out", str(tmp_path / "dl"), "--config", str(config))
    no_traceback(proc)
    assert proc.returncode == EXIT_USAGE
    assert "at most 256" in " ".join(proc.stderr.split())


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_train_frames_writes_only_member_names_of_safe_keys(
    tmp_path: Path, demo_videos: Path
) -> None:
    video = (demo_videos / "demo_c.mp4").read_bytes()
    source = tmp_path / "src" / "00000.tar"
    source.parent.mkdir()
    good = "good_000000000_000002000"
    with tarfile.open(source, "w", format=tarfile.GNU_FORMAT) as tar:
        for key in ("../../evil", "/tmp/abs_evil_internvid", "sub/dir", good, "..", "a..b"):
            _add(tar, f"{key}.mp4", video)
            _add(tar, f"{key}.txt", b"a caption")
        link = tarfile.TarInfo("link.mp4")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        _add(tar, "link.txt", b"a caption")
    out = tmp_path / "deep" / "out"
    proc = internvid("train-frames", str(source), str(out), "--frames", "2", "--short-side", "16")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "1 clips in 1 shards" in " ".join(proc.stderr.split())
    assert "5 with unsafe keys left out" in " ".join(proc.stderr.split())
    with tarfile.open(out / "00000.tar") as tar:
        names = tar.getnames()
        assert all(m.isfile() for m in tar.getmembers())
    assert names == [f"{good}.00.jpg", f"{good}.01.jpg", f"{good}.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["00000.tar"]
    assert (
        not list(tmp_path.rglob("*evil*")) and not Path("/tmp/abs_evil_internvid.00.jpg").exists()
    )


def test_sources_by_scheme_in_lists(tmp_path: Path) -> None:
    from internvid.config import InputConfig
    from internvid.inputs import read_inputs

    video = tmp_path / "a b.mp4"
    video.write_bytes(b"x")
    listing = tmp_path / "l.txt"
    listing.write_text(
        "\n".join(
            [
                video.as_uri(),  # file:///.../a%20b.mp4: the local file
                f"file://localhost{video}",
                "file://elsewhere/x.mp4",
                "ftp://example.com/x.mp4",
                "https://example.com/x.mp4",
                "a\x00b.mp4",
            ]
        )
        + "\n"
    )
    got = read_inputs([str(listing)], InputConfig())
    assert [s.video.source for s in got.samples] == [str(video), "https://example.com/x.mp4"]
    assert [(f.item, f.reason) for f in got.failures] == [
        ("l.txt:3", "unsupported_scheme"),
        ("l.txt:4", "unsupported_scheme"),
        ("l.txt:6", "malformed_input"),
    ]
