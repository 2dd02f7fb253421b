"""Where episode audio is cached (downloaded, or synthesised for the sample catalog)."""

from pathlib import Path

from dagster import ConfigurableResource


class AudioCacheResource(ConfigurableResource):
    """A local folder: ``<episode_id>.<ext>`` per episode."""

    directory: str

    @property
    def path(self) -> Path:
        return Path(self.directory)
