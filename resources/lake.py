"""Where the lake is: the one resource that turns a table name into a URI."""

from __future__ import annotations

from dagster import ConfigurableResource

from podrec.lake.paths import table_uri


class LakeResource(ConfigurableResource):
    """The lake root (``PODREC_LAKE_URI``): a local path or an object-store URI."""

    root: str

    def table(self, layer: str, name: str) -> str:
        """URI of Delta table ``layer.name``, produced by the asset keyed ``[layer, name]``."""
        return table_uri(self.root, layer, name)
