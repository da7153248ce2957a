"""The end-of-run summary table."""

from __future__ import annotations

from rich.table import Table

from internvid.log import console
from internvid.run import RunSummary


def print_summary(s: RunSummary) -> None:
    wall = max(s.wall_seconds, 1e-9)
    table = Table(title=f"internvid run -> {s.out_dir}", show_header=True, header_style="bold")
    for col in ("stage", "unit", "in", "out", "clips", "dropped", "failed", "s"):
        table.add_column(
            col, justify="left" if col in ("stage", "unit", "dropped", "failed") else "right"
        )
    for st in s.stages:
        fmt = lambda d: ", ".join(f"{k}: {v}" for k, v in d.items()) or "-"  # noqa: E731
        table.add_row(
            st["name"],
            st["unit"],
            str(st["in"]),
            str(st["out"]),
            str(st["clips_out"]),
            fmt(st["dropped"]),
            fmt(st["failed"]),
            f"{st['seconds']:.1f}",
        )
    console.print(table)
    reasons = ", ".join(f"{k}: {v}" for k, v in s.failures_by_reason.items()) or "none"
    console.print(
        f"[bold]{s.clips}[/] clips ({s.clip_seconds:.1f} s) from [bold]{s.videos_ok}[/]/{s.videos} videos "
        f"({s.video_seconds:.1f} s of video); failures: {s.failures} ({reasons}); "
        f"shards: {s.shards} ({s.shards_resumed} finished earlier)"
    )
    console.print(
        f"wall {s.wall_seconds:.1f} s: {s.videos / wall:.2f} videos/s, "
        f"{s.video_seconds / wall:.1f} s of video per second"
    )
    for note in s.notes:
        console.print(f"[bold yellow]note:[/] {note}")
