"""Where Dagster keeps what every podrec command runs: ``$DAGSTER_HOME``, by default the data folder's
``dagster_home`` — the same default ``make`` gives it, so ``make dev`` shows what a command ran."""

from __future__ import annotations

import shutil
from pathlib import Path

from podrec.settings import PodrecSettings
from podrec_app.localinfra import INFRA_DIR


def dagster_home(settings: PodrecSettings) -> Path:
    """The data folder's ``dagster_home``, made with the profile's instance yaml if it is new."""
    home = settings.data.path / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        source = "dagster-cluster.yaml" if settings.profile == "cluster" else "dagster.yaml"
        shutil.copy(INFRA_DIR / source, home / "dagster.yaml")
    return home
