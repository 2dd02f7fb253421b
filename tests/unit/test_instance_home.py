"""Every podrec command that runs Dagster finds an instance: $DAGSTER_HOME, or the data folder's."""

from pathlib import Path

from podrec.settings import load_settings
from podrec_app.instance_home import dagster_home


def test_the_default_home_is_the_data_folders_with_the_profiles_instance_yaml(tmp_path: Path) -> None:
    local = load_settings(data={"dir": str(tmp_path / "local")})
    home = dagster_home(local)
    assert home == tmp_path / "local" / "dagster_home"
    assert (home / "dagster.yaml").read_text() == Path("infra/dagster.yaml").read_text()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # an operator's own edit
    assert dagster_home(local) == home and "freshness" not in (home / "dagster.yaml").read_text()
