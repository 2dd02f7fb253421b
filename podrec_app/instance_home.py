"""Where Dagster keeps what every podrec command runs: ``$DAGSTER_HOME``, by default the data folder's
``dagster_home`` — the same default ``make`` gives it, so ``make dev`` shows what a command ran."""

from __future__ import annotations

import shutil
from pathlib import Path

from podrec.settings import PodrecSettings
from podrec_app.localinfra import INFRA_DIR


def made_home(home: Path, profile: str) -> Path:
    """``home`` with the profile's instance yaml, copied in if it has none (one there is the operator's)."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        source = "dagster-cluster.yaml" if profile == "cluster" else "dagster.yaml"
        shutil.copy(INFRA_DIR / source, home / "dagster.yaml")
    return home


def dagster_home(settings: PodrecSettings) -> Path:
    """The data folder's ``dagster_home``, made with the profile's instance yaml if it is new."""
    return made_home(settings.data.path / "dagster_home", settings.profile)
