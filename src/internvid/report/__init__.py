"""`internvid report DIR`: one self-contained HTML page (inline SVG plots, no network) about a run."""

from internvid.report.page import REPORT_NAME, render_report, write_report

__all__ = ["REPORT_NAME", "render_report", "write_report"]
