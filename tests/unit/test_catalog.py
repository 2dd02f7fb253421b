from datetime import date

import pytest

from podrec.content.podcastindex import ParseReport, episode_rows, sample_snapshot
from podrec.language import language_of


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("en-US", "en"), ("en-us", "en"), ("EN_gb", "en"), ("pt-BR", "pt"), ("it", "it"),
        ("ko", "ko"), ("", "und"), ("  ", "und"), (None, "und"), ("123", "und"),
    ],
)  # fmt: skip
def test_language_of(raw: str | None, expected: str) -> None:
    assert language_of(raw) == expected


FEED = {
    "id": 7,
    "title": "Show",
    "language": "pt-BR",
    "trendScore": 3,
    "categories": {"2": "B", "1": "A"},
}


def test_episode_rows_parse_api_shapes() -> None:
    items = [
        {"id": 1, "title": " One ", "datePublished": 1_790_000_000, "duration": 0,
         "transcripts": [{"url": "https://x/1.srt", "type": "application/srt"}]},
        {"id": None, "title": "null id", "datePublished": 1_790_000_000},
        {"id": 2, "title": "Two", "datePublished": 1_790_000_100, "feedLanguage": "",
         "transcriptUrl": "https://x/2.vtt"},
        {"id": 3, "title": "no date"},
    ]  # fmt: skip
    report = ParseReport()
    rows = list(episode_rows(FEED, items, date(2026, 11, 1), "podcastindex", report))
    assert [r["episode_id"] for r in rows] == ["1", "2"]
    assert rows[0]["title"] == "One"
    assert rows[0]["duration_s"] is None  # 0 means unknown in PodcastIndex
    assert rows[0]["transcript_url"] == "https://x/1.srt"
    assert rows[0]["language"] == "pt" and rows[0]["raw_language"] == "pt-BR"
    assert rows[0]["categories"] == ["A", "B"]
    assert rows[1]["transcript_url"] == "https://x/2.vtt"
    # An empty item language falls back to the feed's.
    assert rows[1]["language"] == "pt"
    assert report.episodes == 2
    assert report.skipped == {"missing episode id": 1, "missing publish time": 1}


def test_sample_snapshot_grows_by_publish_date() -> None:
    early, _ = sample_snapshot(date(2026, 10, 5))
    late, report = sample_snapshot(date(2026, 11, 23))
    assert 0 < len(early) < len(late)
    assert {r["episode_id"] for r in early} <= {r["episode_id"] for r in late}
    assert len({r["episode_id"] for r in late}) == len(late)
    assert {"en", "it", "pt", "es", "de", "fr", "ko", "und"} <= {r["language"] for r in late}
    assert report.skipped == {"missing episode id": 1}
    assert all(r["ingest_date"] == date(2026, 11, 23) for r in late)
