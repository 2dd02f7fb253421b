"""Episode audio: fetched into a cache once (bounded, resumable), decoded in-process to the
16 kHz mono 16-bit PCM that Vosk expects."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

SAMPLE_RATE = 16_000


class AudioError(RuntimeError):
    """The audio could not be had or read; the message says which and why."""


def cached_path(audio_dir: Path, episode_id: str) -> Path | None:
    """The cached audio of an episode, whatever its container, if there is one."""
    matches = sorted(p for p in audio_dir.glob(f"{episode_id}.*") if not p.name.endswith(".partial"))
    return matches[0] if matches else None


def fetch(
    url: str,
    audio_dir: Path,
    episode_id: str,
    max_bytes: int = 200 * 1024 * 1024,
    timeout_s: float = 120.0,
) -> Path:
    """The episode's audio in the cache, downloading only what is missing.

    An interrupted download leaves ``<id>.<ext>.partial``; the next attempt asks the server
    for the rest (HTTP Range). Bigger than ``max_bytes`` or slower than ``timeout_s`` fails.
    """
    cached = cached_path(audio_dir, episode_id)
    if cached is not None:
        return cached
    parts = urlsplit(url)
    suffix = Path(parts.path).suffix or ".audio"
    target = audio_dir / f"{episode_id}{suffix}"
    if parts.scheme == "file":
        source = Path(parts.path)
        if not source.is_file():
            raise AudioError(f"not found: {url}")
        return source
    if parts.scheme not in ("http", "https"):
        raise AudioError(f"unsupported URL scheme: {url}")
    audio_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    deadline = time.monotonic() + timeout_s
    try:
        with requests.get(url, headers=headers, stream=True, timeout=min(30.0, timeout_s)) as response:
            if response.status_code == 416:  # we already have every byte
                partial.replace(target)
                return target
            if response.status_code not in (200, 206):
                raise AudioError(f"HTTP {response.status_code} for {url}")
            if response.status_code == 200:
                have = 0  # the server ignored the range: start over
            with partial.open("ab" if have else "wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    have += len(chunk)
                    if have > max_bytes:
                        raise AudioError(f"larger than {max_bytes} bytes: {url}")
                    if time.monotonic() > deadline:
                        raise AudioError(f"download slower than {timeout_s:.0f}s: {url}")
                    out.write(chunk)
    except requests.RequestException as exc:
        raise AudioError(f"{type(exc).__name__} fetching {url}") from exc
    partial.replace(target)
    return target


def decode_pcm16k(path: Path, max_seconds: float | None = None) -> bytes:
    """Any container/codec FFmpeg reads → 16 kHz mono signed 16-bit little-endian PCM."""
    import av

    pcm = bytearray()
    limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE * 2)
    try:
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    pcm += out.to_ndarray().tobytes()
                if limit is not None and len(pcm) >= limit:
                    break
            for out in resampler.resample(None):
                pcm += out.to_ndarray().tobytes()
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise AudioError(f"cannot decode {path.name}: {exc}") from exc
    if not pcm:
        raise AudioError(f"no audio in {path.name}")
    return bytes(pcm[:limit] if limit is not None else pcm)
