"""Why a download failed: the one failure taxonomy of `internvid download` and the run's stage."""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "MAX_REASON_MESSAGE",
    "PERMANENT_REASONS",
    "TRANSIENT_REASONS",
    "FetchError",
    "classify_exception",
    "classify_message",
    "classify_status",
]

MAX_REASON_MESSAGE = 500  # characters of an error message kept in a failure record

# Reasons whose failures a rerun retries (they may well succeed later).
TRANSIENT_REASONS = frozenset(
    {
        "rate_limited",  # HTTP 429, YouTube's "not a bot" / "try again later" (after retries)
        "server_error",  # HTTP 5xx (after retries)
        "network",  # connection reset / refused, a body cut short (after retries)
        "timeout",  # the server stopped answering for longer than --socket-timeout (after retries)
        "cut_failed",  # ffmpeg could not cut the clip from a server that answers (after retries)
    }
)
# Reasons a rerun does not retry: the video (or the row) will not get better by asking again.
PERMANENT_REASONS = frozenset(
    {
        "unavailable",  # "Video unavailable", "This video is not available"
        "private",  # "Private video", members-only videos
        "removed",  # removed by the uploader, for a policy, a copyright claim, account terminated
        "region_locked",  # "not made this video available in your country", geo restriction
        "age_restricted",  # "Sign in to confirm your age"
        "not_found",  # HTTP 404 / 410
        "unsafe_id",  # the row's id could leave the output folder or read as an option
        "duplicate",  # the same clip (video and times) twice in one shard of rows
        "empty_range",  # the row starts where it ends: no clip to cut (nothing is fetched)
        "clip_out_of_range",  # the row's range lies past the end of the video (only probed)
        "other",  # anything else (unsupported URL, no format, not a video, too small...)
    }
)

# yt-dlp's messages (mostly its YouTube extractor's) -> reason, first match wins: the order
# matters ("Video unavailable. This video has been removed by the uploader" is `removed`;
# "Private video. Sign in if you've been granted access" is `private`, not a sign-in wall).
_MESSAGES: tuple[tuple[str, str], ...] = (
    ("private video", "private"),
    ("members-only", "private"),
    ("available to this channel's members", "private"),
    ("confirm your age", "age_restricted"),
    ("age-restricted", "age_restricted"),
    ("inappropriate for some users", "age_restricted"),
    ("not a bot", "rate_limited"),  # "Sign in to confirm you're not a bot": bot check
    ("try again later", "rate_limited"),  # "This content isn't available, try again later"
    ("rate-limited", "rate_limited"),
    ("http error 429", "rate_limited"),  # not a bare "429": ports and video ids hold digits
    ("too many requests", "rate_limited"),
    ("available in your country", "region_locked"),  # "has not made this video available in..."
    ("geo restriction", "region_locked"),  # "not available from your location due to geo ..."
    ("from your location", "region_locked"),
    ("has been removed", "removed"),  # "...removed by the uploader", "...removed for violating"
    ("has been terminated", "removed"),  # "...the YouTube account ... has been terminated"
    ("copyright claim", "removed"),  # "no longer available due to a copyright claim"
    ("no longer available", "removed"),
    ("http error 404", "not_found"),
    ("http error 410", "not_found"),
    ("video unavailable", "unavailable"),
    ("not available", "unavailable"),  # "This video is not available"
    ("unavailable", "unavailable"),
    ("timed out", "timeout"),  # "The read operation timed out", "Read timed out"
    ("connection reset", "network"),
    ("connection refused", "network"),
    ("connection aborted", "network"),
    ("remote end closed", "network"),
    ("bytes read", "network"),  # IncompleteRead: "1000 bytes read, 5000 more expected"
    ("temporary failure in name resolution", "network"),
)
_HTTP_5XX = re.compile(r"http error 5\d\d")  # "HTTP Error 503: Service Unavailable"


class FetchError(Exception):
    """A failed info fetch or clip download: a taxonomy `reason` and whether to retry later."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason  # a slug of TRANSIENT_REASONS or PERMANENT_REASONS
        self.message = message  # one line of detail (yt-dlp's message, an HTTP status)
        # True: worth retrying (in this run with backoff, and again in a rerun)
        self.transient = reason in TRANSIENT_REASONS if transient is None else transient
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After)
        self.attempts = 1  # tries made before giving up (set by the retry loop)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.reason, self.message, self.transient, self.retry_after))


def _rebuild(reason: str, message: str, transient: bool, retry_after: float | None) -> FetchError:
    return FetchError(reason, message, transient=transient, retry_after=retry_after)


def classify_status(status: int) -> str | None:
    """The reason for an HTTP error status, or None when the status says nothing specific."""
    if status in (404, 410):
        return "not_found"
    if status == 429:
        return "rate_limited"
    if 500 <= status <= 599:
        return "server_error"
    return None


def classify_message(message: str) -> str:
    """The reason for an error message of yt-dlp (or ffmpeg); `other` when nothing matches."""
    m = message.lower().replace("\u2019", "'")  # YouTube writes "you’re" with a curly quote
    if _HTTP_5XX.search(m):
        return "server_error"
    for needle, reason in _MESSAGES:
        if needle in m:
            return reason
    return "other"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the exceptions behind it: yt-dlp's `exc_info`, `cause`, and Python's chain."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        info = getattr(e, "exc_info", None)
        if isinstance(info, tuple) and len(info) > 1 and isinstance(info[1], BaseException):
            todo.append(info[1])
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            todo.append(cause)
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                todo.append(nxt)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignored, the backoff applies


def classify_exception(exc: BaseException) -> FetchError:
    """A FetchError for an exception raised by yt-dlp (DownloadError and what it wraps).

    The exceptions behind it are read first (an HTTP status, a geo restriction, a transport
    error), then the message text, which is all YouTube's extractor gives for most cases.
    """
    if isinstance(exc, FetchError):
        return exc
    message = " ".join(str(exc).split())[:MAX_REASON_MESSAGE]
    message = message.removeprefix("ERROR: ")
    from_text = classify_message(message)
    for e in _chain(exc):
        name = type(e).__name__
        status = getattr(e, "status", None)
        if name == "HTTPError" and isinstance(status, int):
            reason = classify_status(status)
            if reason is not None:
                return FetchError(reason, message, retry_after=_retry_after(e))
            if status == 403:  # googlevideo: an expired URL or a throttle; YouTube says why
                if from_text != "other":
                    return FetchError(from_text, message)
                return FetchError("other", message, transient=True)
        if name == "GeoRestrictedError":
            return FetchError("region_locked", message)
    if from_text == "other":
        for e in _chain(exc):
            if isinstance(e, TimeoutError):  # socket.timeout is TimeoutError
                return FetchError("timeout", message or "timed out")
        for e in _chain(exc):
            if isinstance(e, ConnectionError) or type(e).__name__ in (
                "TransportError",
                "IncompleteRead",
            ):
                return FetchError("network", message)
    return FetchError(from_text, message)
