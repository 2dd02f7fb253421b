from podrec.content.transcripts import parse_transcript

VTT = """WEBVTT
Kind: captions

NOTE produced by the publisher

1
00:00:00.000 --> 00:00:04.200
<v Host>Welcome to Deep Tech Weekly.</v>

2
00:00:04.200 --> 00:00:09.000
Today: machine learning in production.
"""

SRT = """1
00:00:00,000 --> 00:00:02,500
Benvenuti.

2
00:00:02,500 --> 00:00:05,000
Oggi parliamo di <i>database</i>.
"""


def test_webvtt() -> None:
    assert parse_transcript(VTT) == "Welcome to Deep Tech Weekly. Today: machine learning in production."


def test_srt() -> None:
    assert parse_transcript(SRT) == "Benvenuti. Oggi parliamo di database."


def test_plain_text_is_kept() -> None:
    assert parse_transcript("Just words.\nMore words.") == "Just words. More words."
