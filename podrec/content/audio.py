"""Episode audio: fetched into a cache once (bounded, resumable), decoded in-process to the
16 kHz mono 16-bit PCM that Vosk expects.

An enclosure URL comes from a feed on the internet, so a fetch is careful with it: http(s) only;
never a loopback, link-local, private or otherwise non-public address (checked for every address
the name resolves to, and again at each redirect) unless ``audio.allow_private_hosts`` says so;
at most ``audio.max_bytes`` in at most ``audio.timeout_s``. The episode id names the cached file
only when it is plainly a file name (``[A-Za-z0-9._-]``); any other id is replaced by its hash, so
an id can never reach outside the cache or widen the cache's glob.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from podrec.settings import AudioSettings

SAMPLE_RATE = 16_000
MAX_REDIRECTS = 5
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")

Resolver = Callable[[str], list[str]]


class AudioError(RuntimeError):
    """The audio could not be had or read; the message says which and why."""


def safe_name(episode_id: str) -> str:
    """The episode id as a cache file name: itself when it is one, else ``id-<sha256>``."""
    if _SAFE_NAME.match(episode_id) and ".." not in episode_id:
        return episode_id
    return "id-" + hashlib.sha256(episode_id.encode()).hexdigest()[:32]


def _resolve(host: str) -> list[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except (socket.gaierror, UnicodeError) as exc:
        raise AudioError(f"cannot resolve {host}: {exc}") from exc


def check_url(url: str, allow_private_hosts: bool = False, resolve: Resolver = _resolve) -> None:
    """Raise ``AudioError`` unless ``url`` is http(s) to public addresses (or private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AudioError(f"refused: only http(s) URLs are fetched: {url}")
    if allow_private_hosts:
        return
    for address in resolve(parts.hostname):
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise AudioError(f"refused: {parts.hostname} is a non-public address ({ip}): {url}")


def get_checked(
    url: str, audio: AudioSettings, headers: dict[str, str] | None = None, timeout_s: float = 30.0,
    resolve: Resolver = _resolve,
) -> requests.Response:  # fmt: skip
    """A streamed GET of ``url`` whose every hop (redirects followed here) passes ``check_url``."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, audio.allow_private_hosts, resolve)
        response = requests.get(url, headers=headers, stream=True, timeout=timeout_s, allow_redirects=False)
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
    raise AudioError(f"more than {MAX_REDIRECTS} redirects: {url}")


def cached_path(audio_dir: Path, episode_id: str) -> Path | None:
    """The cached audio of an episode, whatever its container, if there is one."""
    name = safe_name(episode_id)
    matches = sorted(p for p in audio_dir.glob(f"{name}.*") if not p.name.endswith(".partial"))
    return matches[0] if matches else None


def fetch(url: str, audio_dir: Path, episode_id: str, audio: AudioSettings | None = None) -> Path:
    """The episode's audio in the cache, downloading only what is missing.

    An interrupted download leaves ``<id>.<ext>.partial``; the next attempt asks the server
    for the rest (HTTP Range). Bigger than ``audio.max_bytes`` or slower than ``audio.timeout_s`` fails.
    """
    audio = audio or AudioSettings()
    cached = cached_path(audio_dir, episode_id)
    if cached is not None:
        return cached
    suffix = Path(urlsplit(url).path).suffix
    target = audio_dir / f"{safe_name(episode_id)}{suffix if _SAFE_SUFFIX.match(suffix) else '.audio'}"
    audio_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    deadline = time.monotonic() + audio.timeout_s
    try:
        with get_checked(url, audio, headers, timeout_s=min(30.0, audio.timeout_s)) as response:
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
                    if have > audio.max_bytes:
                        raise AudioError(f"larger than {audio.max_bytes} bytes: {url}")
                    if time.monotonic() > deadline:
                        raise AudioError(f"download slower than {audio.timeout_s:.0f}s: {url}")
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
