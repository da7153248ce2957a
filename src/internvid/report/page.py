"""The report page: the HTML document around the sections (style, CSP, header), written atomically."""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

from internvid.report.data import load_run
from internvid.report.fmt import esc
from internvid.report.sections import SECTIONS, render_sections

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"  # default file name, inside the run folder

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
.card .rule{margin:6px 0 2px;font-size:13px}.card .values{font-size:12px;margin:2px 0;
overflow-wrap:anywhere}
.placeholder{display:flex;align-items:center;justify-content:center;aspect-ratio:4/3;
background:#e9ebef;color:#666;font-size:12px;text-align:center;padding:8px}
pre{background:#fff;border:1px solid #d5d9e0;padding:8px;overflow:auto;max-height:400px}
"""


def render_report(
    run_dir: str | Path, samples: int = 24, seed: int = 0, shown: str | None = None
) -> str:
    """The report page of a run folder as one HTML string (every resource inline); `shown`:
    how the page names the folder (a remote folder's URL), default its resolved path."""
    from internvid import __version__

    run_dir = Path(run_dir)
    shown = shown or str(run_dir.resolve())
    body = render_sections(load_run(run_dir), samples, seed)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS)
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>internvid report: {esc(shown.rstrip('/').rsplit('/', 1)[-1])}</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<h1>internvid report</h1><p>{esc(shown)} · internvid {esc(__version__)}"
        f" · {when}</p><nav>{nav}</nav>" + "".join(body) + "</main></body></html>\n"
    )


def write_report(
    run_dir: str | Path, out: str | Path | None = None, samples: int = 24, seed: int = 0
) -> Path | str:
    """Write the report of `run_dir` to `out` (default DIR/report.html) atomically; return it.
    Either may be remote (s3://...): the run is fetched (but its downloads), the page uploaded."""
    from internvid.io import remote
    from internvid.io.atomic import atomic_open
    from internvid.io.storage import is_remote

    if is_remote(run_dir) or (out is not None and is_remote(out)):
        target = str(out) if out is not None else f"{str(run_dir).rstrip('/')}/{REPORT_NAME}"
        with (
            remote.input_path(run_dir, remote.not_downloads) as local_run,
            remote.output_prefix(target) as local_out,
        ):
            page = render_report(local_run, samples=samples, seed=seed, shown=str(run_dir))
            with atomic_open(local_out) as f:
                f.write(page)
        log.info("report: %s (%d KiB)", target, len(page.encode()) // 1024)
        return target
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir} is not a folder")
    path = Path(out) if out is not None else run_dir / REPORT_NAME
    page = render_report(run_dir, samples=samples, seed=seed)
    with atomic_open(path) as f:
        f.write(page)
    log.info("report: %s (%d KiB)", path, len(page.encode()) // 1024)
    return path
