"""The one failure taxonomy of downloads: yt-dlp's messages and exceptions -> reasons."""

from __future__ import annotations

import io
import sys

import pytest

from internvid.download.errors import (
    PERMANENT_REASONS,
    TRANSIENT_REASONS,
    FetchError,
    classify_exception,
    classify_message,
    classify_status,
)

# (message, reason); the ones marked "was" got another reason from the run's download stage
# before the two downloaders shared this taxonomy (docs/download.md lists the mapping)
MESSAGES = [
    ("ERROR: [youtube] abc: Video unavailable", "unavailable"),
    ("[youtube] abc: Video unavailable. This video is not available", "unavailable"),
    ("[youtube] abc: Private video. Sign in if you've been granted access", "private"),
    (
        "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access "
        "to this video",
        "private",
    ),
    ("Join this channel to get access to members-only content like this video", "private"),
    ("Video unavailable. This video has been removed by the uploader", "removed"),
    ("This video has been removed for violating YouTube's Terms of Service", "removed"),
    (
        "This video is no longer available due to a copyright claim by X",
        "removed",
    ),  # was unavailable
    ("The uploader has not made this video available in your country", "region_locked"),
    (
        "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video is not available in your "
        "country",
        "region_locked",
    ),
    ("This video is not available from your location due to geo restriction", "region_locked"),
    ("Sign in to confirm your age. This video may be inappropriate", "age_restricted"),
    ("Sign in to confirm you\u2019re not a bot. Use --cookies", "rate_limited"),
    # was download_failed; the digits of a video id are no HTTP status
    ("ERROR: [youtube] x404yzabcde: Sign in to confirm you're not a bot", "rate_limited"),
    ("Video unavailable. This content isn't available, try again later", "rate_limited"),
    ("Unable to download webpage: HTTP Error 429: Too Many Requests", "rate_limited"),
    ("ERROR: [generic] x: 429 Too Many Requests", "rate_limited"),
    ("Unable to download webpage: HTTP Error 404: Not Found", "not_found"),  # was unavailable
    ("Unable to download webpage: HTTP Error 410: Gone", "not_found"),  # was download_failed
    # was unavailable (the word in "Service Unavailable")
    ("Unable to download webpage: HTTP Error 503: Service Unavailable", "server_error"),
    # was download_failed, then network: a server that stops answering is a timeout
    ("Unable to download webpage: The read operation timed out", "timeout"),
    ("Unsupported URL: http://127.0.0.1:4290/x", "other"),  # was download_failed
    ("ERROR: Unsupported URL: http://127.0.0.1:44291/page.mp4", "other"),  # a port is no status
    ("ERROR: [youtube] ab429cd4040: Video unavailable", "unavailable"),
    ("", "other"),
]


@pytest.mark.parametrize(("message", "reason"), MESSAGES)
def test_classify_message(message: str, reason: str) -> None:
    assert classify_message(message) == reason
    assert classify_message(message.upper()) == reason  # case does not matter


def test_every_reason_is_in_the_taxonomy() -> None:
    assert not TRANSIENT_REASONS & PERMANENT_REASONS
    for _, reason in MESSAGES:
        assert reason in TRANSIENT_REASONS | PERMANENT_REASONS
    assert {classify_status(s) for s in (404, 410, 429, 500, 503, 599)} == {
        "not_found",
        "rate_limited",
        "server_error",
    }
    assert classify_status(403) is None and classify_status(200) is None


def test_classify_exception_reads_the_status_and_retry_after() -> None:
    from yt_dlp.networking import Response
    from yt_dlp.networking.exceptions import HTTPError
    from yt_dlp.utils import DownloadError

    def wrapped(status: int, headers: dict[str, str]) -> DownloadError:
        resp = Response(io.BytesIO(b""), "http://127.0.0.1/x", headers, status=status)
        try:
            raise HTTPError(resp)
        except HTTPError:
            return DownloadError("ERROR: something went wrong", sys.exc_info())

    e = classify_exception(wrapped(429, {"Retry-After": "7"}))
    assert (e.reason, e.transient, e.retry_after) == ("rate_limited", True, 7.0)
    e = classify_exception(wrapped(404, {}))
    assert (e.reason, e.transient) == ("not_found", False)
    e = classify_exception(wrapped(502, {}))
    assert (e.reason, e.transient) == ("server_error", True)
    e = classify_exception(wrapped(403, {}))  # an expired stream URL: retried with a new info
    assert (e.reason, e.transient) == ("other", True)
    e = classify_exception(
        DownloadError("ERROR: x", (ConnectionResetError, ConnectionResetError(), None))
    )
    assert (e.reason, e.transient) == ("network", True)
    assert e.message == "x"  # yt-dlp's "ERROR: " prefix is dropped
    assert classify_exception(FetchError("private", "p")).transient is False
    assert classify_exception(ValueError("Private video")).reason == "private"
