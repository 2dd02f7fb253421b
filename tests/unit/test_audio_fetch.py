"""Audio fetches: only http(s) to public addresses unless allowed, and ids that cannot escape the cache."""

from pathlib import Path

import pytest

from podrec.content.audio import AudioError, cached_path, check_url, fetch, safe_name
from podrec.settings import AudioSettings


def resolver(*addresses: str):
    return lambda host: list(addresses)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "fd00::1",
     "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1", "224.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(AudioError, match="non-public address"):
        check_url("https://media.example.org/a.mp3", resolve=resolver(address))


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    with pytest.raises(AudioError, match=r"non-public address \(10\.0\.0\.1\)"):
        check_url("http://cdn.example.org/a.mp3", resolve=resolver("93.184.216.34", "10.0.0.1"))


def test_public_addresses_pass_and_private_ones_when_allowed() -> None:
    check_url("https://cdn.example.org/a.mp3", resolve=resolver("93.184.216.34", "2606:2800:220:1::1"))
    check_url("http://127.0.0.1:8000/a.mp3", allow_private_hosts=True, resolve=resolver("127.0.0.1"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a.mp3", "gopher://x/", "http:///a"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(AudioError, match="only http"):
        check_url(url, allow_private_hosts=True, resolve=resolver("93.184.216.34"))


def test_a_private_url_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="non-public"):
        fetch("http://127.0.0.1:9/a.mp3", tmp_path, "ep-1", AudioSettings())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("episode_id", "kept"),
    [("ep-1", True), ("920001.3", True), ("A_b-9", True), ("../../etc/passwd", False), ("a/b", False),
     ("*", False), ("ep[1]", False), ("..", False), (".hidden", False), ("", False), ("x" * 101, False),
     ("épisode", False)],
)  # fmt: skip
def test_episode_ids_become_safe_file_names(episode_id: str, kept: bool) -> None:
    name = safe_name(episode_id)
    assert (name == episode_id) is kept
    assert "/" not in name and not name.startswith(".") and not set(name) & set("*?[]")
    assert safe_name(episode_id) == name  # stable: the cache finds it again


def test_a_glob_like_id_never_matches_another_episodes_audio(tmp_path: Path) -> None:
    (tmp_path / "ep-1.mp3").write_bytes(b"x")
    assert cached_path(tmp_path, "*") is None
    assert cached_path(tmp_path, "ep-?") is None
    assert cached_path(tmp_path, "ep-1") == tmp_path / "ep-1.mp3"
