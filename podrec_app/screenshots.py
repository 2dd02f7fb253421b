"""Pages opened in headless Chromium (Debian's ``chromium``, driven by Playwright) and saved as PNGs.

Used by the UI tests and by ``podrec screenshots``. Playwright never downloads a browser here: it
drives the system one, with the flags that keep it off a closed network.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from podrec_app.localinfra import free_port, running

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    ready: str  # CSS selector of what must be drawn before the picture is taken
    min_ready: int = 1
    failed: str | None = None  # CSS selector whose presence means the page shows an error
    ready_text: str = ""  # text the page must show as well
    init_script: str = ""  # run before the page's own scripts (e.g. to set localStorage)
    width: int = 1400
    height: int = 900
    timeout_ms: int = 90_000
    # Only the part of the page from the heading named first to the one named second.
    section: tuple[str, str] | None = None


@dataclass(frozen=True)
class Shot:
    path: Path
    ready: int
    failed: int
    text: str


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise FileNotFoundError("no chromium on PATH: install Debian's chromium (infra/setup.sh does)")
    return path


def capture(pages: list[Page], out_dir: Path) -> dict[str, Shot]:
    """Open each page, wait until ``min_ready`` elements match ``ready``, settle, and save a PNG."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            for page_spec in pages:
                page = browser.new_page(viewport={"width": page_spec.width, "height": page_spec.height})
                if page_spec.init_script:
                    page.add_init_script(page_spec.init_script)
                page.goto(page_spec.url, wait_until="domcontentloaded", timeout=page_spec.timeout_ms)
                page.wait_for_function(
                    "([sel, n]) => document.querySelectorAll(sel).length >= n",
                    arg=[page_spec.ready, page_spec.min_ready],
                    timeout=page_spec.timeout_ms,
                )
                page.wait_for_function(
                    "text => document.body.innerText.includes(text)", arg=page_spec.ready_text,
                    timeout=page_spec.timeout_ms,
                )  # fmt: skip
                page.wait_for_timeout(1500)  # charts animate in; let them finish drawing
                path = out_dir / f"{page_spec.name}.png"
                clip = None
                if page_spec.section:
                    top, end = (
                        page.get_by_role("heading", name=n).first.bounding_box() for n in page_spec.section
                    )
                    clip = {
                        "x": 0,
                        "y": top["y"] - 16,
                        "width": page_spec.width,
                        "height": end["y"] - top["y"],
                    }
                page.screenshot(path=str(path), full_page=True, clip=clip)
                shots[page_spec.name] = Shot(
                    path=path,
                    ready=page.locator(page_spec.ready).count(),
                    failed=page.locator(page_spec.failed).count() if page_spec.failed else 0,
                    text=page.inner_text("body"),
                )
                page.close()
        finally:
            browser.close()
    return shots


def dashboard_page(base_url: str, min_charts: int = 5) -> Page:
    # Streamlit scrolls inside the page, so a tall viewport is what makes the whole dashboard fit.
    return Page("dashboard", base_url, ready='[data-testid="stVegaLiteChart"]', min_ready=min_charts,
                failed='[data-testid="stException"]', height=3600)  # fmt: skip


def dashboard_ab_page(base_url: str) -> Page:
    """The dashboard's A/B section alone: arms, the experiment's readout, the sample-ratio test — or,
    on a lake where nothing was served or analysed yet (the demo's), the section saying so."""
    return Page("dashboard-ab", base_url, ready='[data-testid="stVegaLiteChart"]', min_ready=5,
                failed='[data-testid="stException"]', ready_text="The experiment so far", height=3600,
                section=("A/B arms", "Top episodes by listener language"))  # fmt: skip


def api_docs_page(base_url: str) -> Page:
    return Page("api-docs", f"{base_url}/docs", ready=".swagger-ui .opblock", min_ready=4)


# Dagster's UI greets a new browser with a community dialog; this browser has seen it.
_SEEN_DAGSTER_DIALOG = "localStorage.setItem('communityNux', '\"1\"');"


def dagster_asset_graph_page(base_url: str, group: str = "gold") -> Page:
    """One layer's asset graph: each asset's kinds, partitions and its checks' results."""
    url = f"{base_url}/locations/__repository__@podrec/asset-groups/{group}"
    return Page(f"dagster-asset-graph-{group}", url, ready="foreignObject", min_ready=4,
                ready_text="Asset checks", init_script=_SEEN_DAGSTER_DIALOG,
                width=1800, height=1200)  # fmt: skip


def dagster_checks_page(base_url: str, asset: str = "gold/recommendations") -> Page:
    """One asset's checks tab: each Great Expectations and Evidently check with its last result."""
    name = "dagster-checks-" + asset.replace("/", "-")
    return Page(name, f"{base_url}/assets/{asset}?view=checks", ready="body",
                ready_text="every_active_user_has_k", init_script=_SEEN_DAGSTER_DIALOG,
                height=1200)  # fmt: skip


def dagster_automation_page(base_url: str) -> Page:
    """The Automation page: the automation sensor (every asset's condition) and the Kafka-lag sensor."""
    return Page("dagster-automation", f"{base_url}/automation", ready="body", ready_text="automation_sensor",
                init_script=_SEEN_DAGSTER_DIALOG, height=1000)  # fmt: skip


def dagster_asset_columns_page(base_url: str, asset: str = "gold/recommendations") -> Page:
    """One asset's overview: its column schema (from the Spark schema) and column lineage."""
    name = "dagster-columns-" + asset.replace("/", "-")
    return Page(name, f"{base_url}/assets/{asset}?view=overview", ready="body", ready_text="Columns",
                init_script=_SEEN_DAGSTER_DIALOG, height=2000)  # fmt: skip


def drift_report_page(url: str) -> Page:
    """An Evidently report, opened from the link in its check's metadata."""
    return Page("drift-report", url, ready="svg", min_ready=3, ready_text="Drift", height=1600)


@contextmanager
def dagster_ui(env: dict[str, str] | None = None, port: int | None = None) -> Iterator[str]:
    """The Dagster webserver on the repo's workspace (and ``$DAGSTER_HOME``'s runs) for the block."""
    base = f"http://127.0.0.1:{port or free_port()}"
    workspace = str(Path(__file__).resolve().parents[1] / "workspace.yaml")
    command = [sys.executable, "-m", "dagster_webserver", "-w", workspace, "-h", "127.0.0.1",
               "-p", base.rsplit(":", 1)[1]]  # fmt: skip
    with running(command, f"{base}/server_info", env=env, timeout_s=180):
        yield base


@contextmanager
def api_and_dashboard(
    env: dict[str, str] | None = None, api_port: int | None = None, dashboard_port: int | None = None
) -> Iterator[tuple[str, str]]:
    """``podrec serve`` and ``podrec dashboard`` on loopback (free ports unless given) for the block;
    yields their base URLs."""
    api = f"http://127.0.0.1:{api_port or free_port()}"
    board = f"http://127.0.0.1:{dashboard_port or free_port()}"
    me = [sys.executable, "-m", "podrec_app.cli"]
    with (
        running([*me, "serve", "--port", api.rsplit(":", 1)[1]], f"{api}/health", env=env),
        running([*me, "dashboard", "--port", board.rsplit(":", 1)[1]], f"{board}/_stcore/health", env=env),
    ):
        yield api, board
