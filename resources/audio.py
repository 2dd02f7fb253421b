"""Where episode audio is cached (downloaded, or synthesised for the sample catalog), and the bounds
on fetching it (``settings.audio``)."""

from pathlib import Path

from dagster import ConfigurableResource

from podrec.settings import AudioSettings


class AudioCacheResource(ConfigurableResource):
    """A local folder, ``<episode_id>.<ext>`` per episode; the fetch bounds under their settings' names."""

    directory: str
    max_bytes: int
    timeout_s: float
    allow_private_hosts: bool

    @property
    def path(self) -> Path:
        return Path(self.directory)

    def limits(self) -> AudioSettings:
        """What a fetch may do: size, time, and whether private addresses are allowed."""
        return AudioSettings(
            max_bytes=self.max_bytes, timeout_s=self.timeout_s, allow_private_hosts=self.allow_private_hosts
        )
