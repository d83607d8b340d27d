"""The dashboard in a real headless Chromium against a real `tenantvault serve --dev`:
root sees every tenant, a tenant's admin only its own (never another tenant's name or
paths), the token is kept in memory only, tenant-supplied names render as text (no script
runs), and the pages load under the strict Content-Security-Policy without a violation.

Screenshots of every page go to $TENANTVAULT_UI_ARTIFACTS (default: the test's tmp dir).
Needs Debian's `chromium` (apt) and the `playwright` Python package: Playwright drives the
system browser; its own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Response, sync_playwright

from tests.integration._support import (
    canary,
    clean_env,
    free_port,
    stop,
    tenantvault_executable,
    wait_healthy,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = ("overview", "usage", "security", "compliance")
# Tenant-supplied free text that would run script if the page ever built HTML from it.
HOSTILE = "<img src=x onerror=alert(1)>"
DASHBOARD_POLICY = """
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/metrics" { capabilities = ["read"] }
path "sys/alerts" { capabilities = ["read"] }
path "sys/dashboard" { capabilities = ["read"] }
path "sys/audit/events" { capabilities = ["read"] }
path "sys/audit/report" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }
path "sys/rotation/expiring" { capabilities = ["read"] }
path "sys/pki/expiring" { capabilities = ["read"] }
"""


@dataclass(frozen=True)
class Served:
    url: str
    root_token: str
    alpha_admin: str


def _api(
    url: str, token: str, method: str, path: str, namespace: str | None = None, json: object = None
) -> httpx.Response:
    headers = {"X-Vault-Token": token}
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    response = httpx.request(method, f"{url}/v1/{path}", headers=headers, json=json, timeout=10)
    assert response.status_code < 300, response.text
    return response


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    root = canary("root-")
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *tenantvault_executable(),
                "serve",
                "--dev",
                "--dev-root-token",
                root,
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(directory),
        )
    try:
        wait_healthy(process, url, log, "tenantvault serve --dev")
        admins = {}
        for tenant, path in (("alpha-corp", "alpha-app/db"), ("bravo-corp", "bravo-hidden/key")):
            _api(url, root, "POST", f"sys/namespaces/{tenant}")
            _api(url, root, "PUT", "sys/policies/acl/dash", tenant, {"policy": DASHBOARD_POLICY})
            created = _api(
                url,
                root,
                "POST",
                "auth/token/create",
                tenant,
                {"policies": ["dash"], "display_name": f"{tenant}-admin"},
            )
            admin = created.json()["auth"]["client_token"]
            admins[tenant] = admin
            _api(url, admin, "POST", f"secret/data/{path}", json={"data": {"v": "1"}})
            _api(url, admin, "POST", f"secret/data/{path}-unread", json={"data": {"v": "1"}})
            _api(url, admin, "GET", f"secret/data/{path}")
            # An API key that expires in a week (sys/rotation/expiring lists it).
            soon = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
            _api(url, admin, "POST", f"secret/data/{path}-api-key", json={"data": {"v": "1"}})
            _api(
                url,
                admin,
                "POST",
                f"secret/metadata/{path}-api-key",
                json={"custom_metadata": {"expires_at": soon}},
            )
        # A reader whose display name is hostile markup, shown in the usage page's readers.
        hostile = _api(
            url,
            admins["alpha-corp"],
            "POST",
            "auth/token/create",
            json={"policies": ["dash"], "display_name": HOSTILE},
        )
        _api(url, hostile.json()["auth"]["client_token"], "GET", "secret/data/alpha-app/db")
        yield Served(url, root, admins["alpha-corp"])
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("TENANTVAULT_UI_ARTIFACTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Session:
    page: Page
    dialogs: list[str]
    console_errors: list[str]
    requests: list[str]
    failures: list[str] = field(default_factory=list)


def _sign_in(browser: Browser, url: str, token: str) -> Session:
    context = browser.new_context()
    page = context.new_page()
    session = Session(page, [], [], [])

    def on_dialog(dialog: Dialog) -> None:
        session.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            session.console_errors.append(message.text)

    def on_response(answer: Response) -> None:
        if answer.status >= 400:
            session.failures.append(f"{answer.status} {answer.url}")

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("request", lambda request: session.requests.append(request.url))
    page.on("response", on_response)
    response = page.goto(f"{url}/ui/")
    assert response is not None
    assert response.status == 200
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    page.wait_for_selector("body[data-ready='1']")
    field = page.locator("input#token")
    assert field.get_attribute("type") == "password"
    field.fill(token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("body[data-loaded='overview']")
    return session


def _visit(session: Session, name: str, artifacts: Path, who: str) -> str:
    page = session.page
    page.evaluate("name => { window.location.hash = '#' + name; }", name)
    page.wait_for_selector(f"body[data-loaded='{name}']:not([data-loading])")
    page.screenshot(path=str(artifacts / f"{who}-{name}.png"), full_page=True)
    text: str = page.inner_text("body")
    assert "Could not load this page" not in text
    return text


def _assert_token_in_memory_only(session: Session, token: str) -> None:
    page = session.page
    assert token not in page.url
    assert page.evaluate("() => JSON.stringify(Object.entries(localStorage))") == "[]"
    assert page.evaluate("() => JSON.stringify(Object.entries(sessionStorage))") == "[]"
    assert page.context.cookies() == []
    assert not any(token in url for url in session.requests)
    assert page.input_value("input#token") == ""


def test_root_sees_every_tenant(served: Served, browser: Browser, artifacts: Path) -> None:
    session = _sign_in(browser, served.url, served.root_token)
    texts = {name: _visit(session, name, artifacts, "root") for name in PAGES}
    assert "alpha-corp" in texts["overview"]
    assert "bravo-corp" in texts["overview"]
    # Root picks a tenant for the per-tenant pages.
    session.page.select_option("#tenant-select", "bravo-corp")
    session.page.wait_for_selector("body[data-loaded='compliance']:not([data-loading])")
    usage = _visit(session, "usage", artifacts, "root-bravo")
    assert "bravo-hidden/key" in usage
    assert "bravo-hidden/key-unread" in usage  # never read
    _assert_token_in_memory_only(session, served.root_token)
    assert session.dialogs == []
    assert not [e for e in session.console_errors if "Content Security Policy" in e]


def test_a_tenant_admin_sees_only_its_tenant(
    served: Served, browser: Browser, artifacts: Path
) -> None:
    session = _sign_in(browser, served.url, served.alpha_admin)
    texts = {name: _visit(session, name, artifacts, "alpha-admin") for name in PAGES}
    html = session.page.content()
    for text in (*texts.values(), html):
        assert "bravo" not in text
    assert "alpha-corp" in texts["overview"]
    assert "alpha-app/db" in texts["usage"]
    assert "alpha-app/db-unread" in texts["usage"]
    assert "secret/alpha-app/db-api-key" in texts["usage"]  # near its expires_at
    assert session.page.locator("#scope-bar").is_hidden(), session.failures
    # The compliance report downloads as CSV and JSON, the tenant's own.
    for button, marker in (
        ("#report-csv", "section,subject,metric,value"),
        ("#report-json", '"tenant": "alpha-corp"'),
    ):
        with session.page.expect_download() as download:
            session.page.click(button)
        saved = artifacts / f"alpha-admin-{download.value.suggested_filename}"
        download.value.save_as(saved)
        report = saved.read_text()
        assert marker in report
        assert "alpha-app/db" in report
        assert "bravo" not in report
    _assert_token_in_memory_only(session, served.alpha_admin)
    assert not [e for e in session.console_errors if "Content Security Policy" in e]


def test_hostile_names_render_as_text(served: Served, browser: Browser, artifacts: Path) -> None:
    """A display name holding markup is shown as those characters; no element, no dialog."""
    session = _sign_in(browser, served.url, served.alpha_admin)
    text = _visit(session, "usage", artifacts, "hostile")
    assert HOSTILE in text
    page = session.page
    assert page.locator("img").count() == 0
    assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
    page.wait_for_timeout(200)  # give a (wrongly) injected handler the chance to fire
    assert session.dialogs == []


def test_the_ui_is_shipped_offline() -> None:
    """Nothing the page loads comes from another origin: every script and style is ours."""
    root = Path(__file__).parents[2] / "src" / "tenantvault" / "ui" / "static"
    index = (root / "index.html").read_text()
    for forbidden in ("http://", "https://", "<script>", "style=", "<style"):
        assert forbidden not in index
    # Our script never turns a string into markup or code.
    script = (root / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    for stored in ("localStorage", "sessionStorage", "document.cookie"):
        assert stored not in script
    assert (root / "vendor" / "uPlot.iife.min.js").is_file()
    assert (root / "vendor" / "uPlot.LICENSE").is_file()
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
