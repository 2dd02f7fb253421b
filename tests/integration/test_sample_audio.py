"""Sample-episode speech synthesised with the real espeak-ng."""

import wave
from pathlib import Path

import pytest

from podrec.content.podcastindex import sample_catalog_rows
from podrec.content.sample_audio import generate

pytestmark = pytest.mark.integration


def test_korean_sample_episodes_get_speech(tmp_path: Path) -> None:
    rows = sample_catalog_rows()
    written = generate(rows, tmp_path)
    korean = {r["episode_id"] for r in rows if r["language"] == "ko"}
    assert set(written) == korean and len(korean) == 8
    for path in written.values():
        with wave.open(str(path)) as w:
            seconds = w.getnframes() / w.getframerate()
        assert seconds > 2.0
    mtimes = {p: p.stat().st_mtime_ns for p in written.values()}
    generate(rows, tmp_path)  # a second run keeps what exists
    assert {p: p.stat().st_mtime_ns for p in written.values()} == mtimes
    assert not list(tmp_path.glob("*.partial.wav"))
