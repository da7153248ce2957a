"""A video platform for collect's tests, as yt-dlp extractors: canned search results and video
facts from a catalogue file ($FAKE_PLATFORM), media served by a loopback HTTP server.

The catalogue (JSON): {"base_url": "http://127.0.0.1:PORT", "queries": {query: [ids]},
"videos": {id: {"file": "x.mp4", "duration": 12, "height": 480, "width": 854, "audio": true,
"title": ..., "private": false}}, "log": "requests.log", "delay": 0.0, "blocked": false}.
Every request the extractors answer is appended to the log ("search QUERY" / "video ID")
when it starts, so a test sees what was asked, across processes.
"""

from __future__ import annotations

import json
import os
import time

from yt_dlp.extractor.common import InfoExtractor, SearchInfoExtractor
from yt_dlp.utils import ExtractorError


def _catalogue() -> dict:
    with open(os.environ["FAKE_PLATFORM"], encoding="utf-8") as f:
        return json.load(f)


def _asked(cat: dict, what: str) -> None:
    with open(cat["log"], "a", encoding="utf-8") as f:
        f.write(what + "\n")
        f.flush()
    if cat.get("delay"):
        time.sleep(cat["delay"])
    if cat.get("blocked"):
        raise ExtractorError("Sign in to confirm you're not a bot", expected=True)


class FakeSearchIE(SearchInfoExtractor):
    IE_NAME = "fakesearch"
    _SEARCH_KEY = "fakesearch"

    def _search_results(self, query):
        cat = _catalogue()
        _asked(cat, f"search {query}")
        for vid in cat["queries"].get(query, []):
            v = cat["videos"].get(vid, {})
            yield self.url_result(
                f"fakevideo:{vid}", ie="FakeVideo", video_id=vid, video_title=v.get("title"),
                duration=v.get("flat_duration"),
            )  # fmt: skip


class FakeVideoIE(InfoExtractor):
    IE_NAME = "FakeVideo"
    _VALID_URL = r"fakevideo:(?P<id>[A-Za-z0-9_-]+)"

    def _real_extract(self, url):
        vid = self._match_id(url)
        cat = _catalogue()
        _asked(cat, f"video {vid}")
        v = cat["videos"][vid]
        if v.get("private"):
            raise ExtractorError(
                "Private video. Sign in if you've been granted access", expected=True
            )
        media = f"{cat['base_url']}/{v['file']}"
        fmt = {
            "format_id": "main", "url": media, "ext": "mp4", "height": v["height"],
            "width": v.get("width"), "vcodec": "avc1", "acodec": "mp4a" if v.get("audio", True) else "none",
        }  # fmt: skip
        return {
            "id": vid,
            "title": v.get("title", vid),
            "description": v.get("description", f"about {vid}"),
            "tags": v.get("tags", ["fake"]),
            "categories": ["People & Blogs"],
            "channel": v.get("channel", "fake channel"),
            "upload_date": "20230102",
            "language": "en",
            "duration": v["duration"],
            "webpage_url": media,
            "formats": [fmt],
        }


EXTRACTORS = ["fake_platform:FakeSearchIE", "fake_platform:FakeVideoIE"]
