"""One transcript per episode, from the best source that works.

Order: Vosk on the episode's audio (when a model exists for its language), the publisher's
transcript (PodcastIndex ``transcriptUrl``: SRT, WebVTT or plain text), the description.
A failing source is recorded with its reason and the next one is tried, so one bad
episode (a 404, corrupt audio, a time-out) never stops the rest.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from podrec.content.audio import SAMPLE_RATE, AudioError, decode_pcm16k, fetch, get_checked
from podrec.settings import AudioSettings

_TIMING = re.compile(r"^\s*(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}\s*-->")
_TAG = re.compile(r"<[^>]+>")


def parse_transcript(text: str) -> str:
    """Spoken text of an SRT or WebVTT file (cue numbers, timings, tags dropped); plain text as is."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped == "WEBVTT" or stripped.isdigit() or _TIMING.match(stripped):
            continue
        if stripped.startswith(("NOTE", "STYLE", "Kind:", "Language:")):
            continue
        lines.append(_TAG.sub("", stripped))
    return " ".join(lines).strip()


def vosk_transcribe(model: Any, pcm: bytes) -> str:
    """Feed 16 kHz PCM to a Vosk recogniser in chunks; the recognised text."""
    from vosk import KaldiRecognizer

    recognizer = KaldiRecognizer(model, SAMPLE_RATE)
    pieces = []
    chunk = SAMPLE_RATE * 2 * 4  # four seconds per call keeps memory flat for long episodes
    for start in range(0, len(pcm), chunk):
        if recognizer.AcceptWaveform(pcm[start : start + chunk]):
            pieces.append(json.loads(recognizer.Result()).get("text", ""))
    pieces.append(json.loads(recognizer.FinalResult()).get("text", ""))
    return " ".join(p for p in pieces if p).strip()


@dataclass
class Transcript:
    episode_id: str
    language: str
    text: str
    source: str  # vosk | publisher | description
    model: str | None
    audio_seconds: float | None
    processing_seconds: float
    transcribed_at: datetime
    problems: list[str] = field(default_factory=list)  # sources that were tried and failed, and why
    skipped: list[str] = field(default_factory=list)  # sources that did not apply (no model, no URL)


def transcribe(
    episode: dict[str, Any],
    model_for: Callable[[str], tuple[Any, str] | None],
    audio_dir: Path,
    max_audio_seconds: float | None = None,
    http_timeout_s: float = 30.0,
    audio: AudioSettings | None = None,
) -> Transcript:
    """The best transcript ``episode`` (a ``silver.episodes`` row) can get. Audio and the publisher's
    transcript are fetched within ``audio``'s bounds and address rules (podrec.content.audio)."""
    audio = audio or AudioSettings()
    started = time.perf_counter()
    problems: list[str] = []
    skipped: list[str] = []

    def done(text: str, source: str, model: str | None = None, seconds: float | None = None) -> Transcript:
        return Transcript(
            episode["episode_id"], episode["language"], text, source, model, seconds,
            round(time.perf_counter() - started, 3), datetime.now(UTC), problems, skipped,
        )  # fmt: skip

    found = model_for(episode["language"])
    if found is None:
        skipped.append(f"vosk: no model for language {episode['language']!r}")
    elif not episode.get("enclosure_url"):
        skipped.append("vosk: no audio URL")
    else:
        model, model_name = found
        try:
            path = fetch(episode["enclosure_url"], audio_dir, episode["episode_id"], audio)
            pcm = decode_pcm16k(path, max_audio_seconds)
            text = vosk_transcribe(model, pcm)
            if text:
                return done(text, "vosk", model_name, round(len(pcm) / (2 * SAMPLE_RATE), 2))
            problems.append("vosk: recognised no words")
        except AudioError as exc:
            problems.append(f"vosk: {exc}")

    if episode.get("transcript_url"):
        try:
            with get_checked(episode["transcript_url"], audio, timeout_s=http_timeout_s) as response:
                body = response.raw.read(audio.max_bytes + 1, decode_content=True)
            if response.status_code != 200:
                problems.append(f"publisher: HTTP {response.status_code}")
            elif len(body) > audio.max_bytes:
                problems.append(f"publisher: larger than {audio.max_bytes} bytes")
            elif text := parse_transcript(body.decode("utf-8", errors="replace")):  # WebVTT is UTF-8
                return done(text, "publisher")
            else:
                problems.append("publisher: empty transcript")
        except AudioError as exc:
            problems.append(f"publisher: {exc}")
        except requests.RequestException as exc:
            problems.append(f"publisher: {type(exc).__name__}")
    return done(" ".join(p for p in (episode.get("title"), episode.get("description")) if p), "description")


@dataclass
class TranscriptionReport:
    transcribed: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)  # episode id → what failed


def transcribe_in_batches(
    episodes: list[dict[str, Any]],
    transcribe_one: Callable[[dict[str, Any]], Transcript],
    commit: Callable[[list[Transcript]], None],
    commit_every_s: float,
    commit_max: int,
    progress: Callable[[int, int], None] | None = None,
) -> TranscriptionReport:
    """Transcribe ``episodes``, handing ``commit`` what is done at least every ``commit_every_s``
    seconds (and every ``commit_max`` episodes): a crash loses at most that much work, and the re-run
    skips what was committed. Time, not a count, sets the pace, so thousands of description-only
    transcripts make one commit while slow speech-to-text still commits as it goes."""
    report = TranscriptionReport()
    batch: list[Transcript] = []
    last_commit = time.monotonic()
    for i, episode in enumerate(episodes, 1):
        result = transcribe_one(episode)
        batch.append(result)
        report.transcribed += 1
        report.sources[result.source] = report.sources.get(result.source, 0) + 1
        if result.problems:
            report.problems[result.episode_id] = result.problems
        if len(batch) >= commit_max or time.monotonic() - last_commit >= commit_every_s or i == len(episodes):
            commit(batch)
            batch, last_commit = [], time.monotonic()
            if progress:
                progress(i, len(episodes))
    return report


def transcript_rows(batch: list[Transcript]) -> list[dict[str, Any]]:
    """``silver.transcripts`` rows (what was skipped is reported, not stored)."""
    return [{k: v for k, v in t.__dict__.items() if k != "skipped"} for t in batch]
