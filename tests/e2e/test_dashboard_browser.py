"""``kubectl gate dashboard`` in a real browser (headless Chromium driven by Selenium), on a rollout
driven by Flagger (the simulator on the sandbox, real Flagger on the real tier) and the sidecar.

The rollout waits at confirm-rollout; a click on its Open button with a reason opens it (the
dialog shows the exact command first); the page shows the rollout held at confirm-promotion at
max weight, with who opened what and why; closing ``rollout`` there is refused as the CLI refuses
it; Promote with a reason lets it through and the page shows the promotion. Screenshots are kept
in the test's tmp dir (and copied to $GATE_DASHBOARD_SCREENSHOTS when set: docs/images is made so).

Chromium and chromedriver are Debian's (``apt-get install chromium chromium-driver``; ``make test``
installs them when run as root); without them the test skips, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.tiers import REAL, SLOWDOWN
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

#: A whole rollout through the page: about a minute on a busy sandbox, a few on the real tier.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200 if REAL else 300)]
BIN = Path(sys.executable).parent
BROWSERS = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")
DRIVERS = ("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _find(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path):
    chromium, driver = _find(BROWSERS), _find(DRIVERS)
    if not (chromium and driver):
        pytest.skip(
            f"no headless browser: chromium {'found' if chromium else 'not found'}, chromedriver "
            f"{'found' if driver else 'not found'} (Debian: apt-get install chromium chromium-driver; "
            "make test installs them when run as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # NB: as root (CI) Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--window-size=1280,860",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(driver, log_output=str(tmp_path / "chromedriver.log")), options=options)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture
def dashboard(kubeconfig, namespace, tmp_path, wait_until):
    """``kubectl-gate dashboard --no-browser --port 0`` as a process; its URL (with the token)."""
    log = tmp_path / "dashboard.log"
    args = ["dashboard", "--no-browser", "--port", "0", "--kubeconfig", kubeconfig, "-n", namespace]
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "kubectl-gate"), *args], stdout=out, stderr=out)
    try:

        def url():
            if proc.poll() is not None:
                raise RuntimeError(f"kubectl gate dashboard exited {proc.returncode}: {log.read_text()}")
            found = re.search(r"at (http://127\.0\.0\.1:\d+/\?token=\S+)", log.read_text())
            return found and found.group(1)

        yield wait_until(url, timeout=20, what="the dashboard's URL")
    finally:
        proc.terminate()
        proc.wait(10)


class Page:
    """The dashboard as a user sees it; every lookup is fresh (the page redraws on each snapshot)."""

    def __init__(self, driver, key: str, shots: Path):
        self.driver, self.key, self.shots = driver, key, shots

    def wait(self, predicate, what: str, timeout: float = 30.0):
        waiter = WebDriverWait(
            self.driver, timeout * SLOWDOWN, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
        )
        try:
            return waiter.until(lambda _: predicate())
        except Exception as e:
            self.shot("failure")
            raise AssertionError(f"the page never showed {what}; it shows:\n{self.card_text()}") from e

    def expect(self, read, expected, what: str, timeout: float = 10.0) -> None:
        """Wait until ``read()`` is ``expected`` (the page redraws after each poll)."""
        seen = []

        def equal():
            seen.append(read())
            return seen[-1] == expected

        try:
            self.wait(equal, what, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast read: {seen[-1] if seen else None!r}, expected {expected!r}") from None

    def card_text(self) -> str:
        try:
            return self.card().text
        except Exception:  # noqa: BLE001 - only for the failure message
            return self.driver.find_element(By.TAG_NAME, "body").text

    def card(self):
        return self.driver.find_element(By.CSS_SELECTOR, f'section[data-key="{self.key}"]')

    def fact(self, name: str) -> str:
        return self.card().find_element(By.CSS_SELECTOR, f".v.{name}").text

    def gate_row(self, gate: str) -> list[str]:
        cells = self.card().find_elements(By.CSS_SELECTOR, f'tr[data-gate="{gate}"] td')
        return [c.text for c in cells[:7]]

    def shows(self, **facts: str) -> bool:
        return all(self.fact(name) == value for name, value in facts.items())

    def click(self, css: str) -> None:
        def clicked():
            self.card().find_element(By.CSS_SELECTOR, css).click()
            return True

        self.wait(clicked, f"a button {css}")

    def act(self, css: str, reason: str, *, expect_command: str, shot: str = "") -> tuple[str, str]:
        """Click a button, type the reason, check the command shown, run it; (status, output)."""
        self.click(css)
        dialog = self.driver.find_element(By.ID, "action")
        self.wait(lambda: dialog.is_displayed(), "the action dialog")
        run = dialog.find_element(By.ID, "run")
        assert not run.is_enabled(), "Run is enabled before a reason is given"
        dialog.find_element(By.ID, "reason").send_keys(reason)
        command = dialog.find_element(By.ID, "command")
        self.wait(lambda: command.text == expect_command, f"the command {expect_command!r} (shows {command.text!r})")
        if shot:
            self.shot(shot)
        run.click()
        status = dialog.find_element(By.ID, "outcome-status")
        self.wait(lambda: status.is_displayed() and status.text, "the command's outcome")
        return status.text, dialog.find_element(By.ID, "outcome-text").text

    def close_dialog(self) -> None:
        self.driver.find_element(By.ID, "cancel").click()
        self.wait(lambda: not self.driver.find_element(By.ID, "action").is_displayed(), "the dialog closed")

    def shot(self, name: str) -> Path:
        path = self.shots / f"dashboard-{name}.png"
        self.driver.save_screenshot(str(path))
        keep = os.environ.get("GATE_DASHBOARD_SCREENSHOTS")
        if keep:
            shutil.copy(path, Path(keep) / path.name)
        return path


def test_a_click_with_a_reason_opens_the_gate_and_the_page_shows_the_promotion(
    rollouts, browser, dashboard, namespace, kubeconfig, tmp_path
):
    from canarygate.kube.identity import whoami

    ns, me = namespace, whoami(rollouts.kube)  # the dashboard runs with the same (admin) kubeconfig
    assert me
    rollouts.create("demo", confirm_rollout="closed", confirm_promotion="closed")
    rollouts.new_revision("demo")
    rollouts.wait_phase("demo", "Waiting")

    browser.get(dashboard)
    assert "token=" not in browser.current_url  # the token went into a cookie
    page = Page(browser, f"{ns}/demo", tmp_path)
    page.wait(lambda: page.shows(phase="Waiting", held="confirm-rollout"), "Waiting at confirm-rollout")
    assert f"as {me} · namespace {ns}" in browser.find_element(By.ID, "where").text
    page.expect(
        lambda: page.gate_row("confirm-rollout")[:3],
        ["confirm-rollout", "closed, holding", "declared"],
        "confirm-rollout holding",
    )
    page.shot("waiting")

    status, output = page.act(
        'tr[data-gate="confirm-rollout"] button[data-verb="open"]',
        "CAB-1 approved",
        expect_command=(
            f"kubectl gate open confirm-rollout demo -n {ns} '--reason=CAB-1 approved' --kubeconfig {kubeconfig}"
        ),
    )
    assert (status, output) == ("Done", "gate confirm-rollout of canarygate/demo opened for this rollout")
    page.close_dialog()

    page.wait(
        lambda: page.shows(phase="WaitingPromotion", weight="40/40", held="confirm-promotion"),
        "WaitingPromotion at 40/40, held at confirm-promotion",
    )
    page.expect(
        lambda: (lambda row: row[:4] + row[5:])(page.gate_row("confirm-rollout")),
        ["confirm-rollout", "opened", "live", me, "rollout", "CAB-1 approved"],
        "who opened confirm-rollout and why",
    )
    page.expect(
        lambda: page.card().find_element(By.CSS_SELECTOR, ".next code").text,
        f"kubectl gate promote demo -n {ns}",
        "the command to go on",
    )
    page.shot("held")

    # the CLI's safety rule holds: closing a check gate during a rollout needs --yes
    status, output = page.act(
        'tr[data-gate="rollout"] button[data-verb="close"]',
        "try",
        expect_command=f"kubectl gate close rollout demo -n {ns} --reason=try --kubeconfig {kubeconfig}",
    )
    assert status == "Refused or failed (exit 1)"
    assert output.startswith("error: closing rollout is not a pause") and "add --yes" in output
    assert browser.find_element(By.ID, "flag-yes").is_displayed()
    page.close_dialog()
    page.expect(lambda: page.gate_row("rollout")[1], "opened", "rollout still opened")

    status, output = page.act(
        'button[data-verb="promote"]',
        "CAB-2 go",
        expect_command=f"kubectl gate promote demo -n {ns} '--reason=CAB-2 go' --kubeconfig {kubeconfig}",
        shot="promote",
    )
    assert (status, output) == ("Done", "canarygate/demo promoted: confirm-promotion opened for this promotion")
    page.close_dialog()

    page.wait(lambda: page.shows(phase="Succeeded", held="-"), "the promotion (Succeeded)", timeout=40)
    page.shot("promoted")
    assert rollouts.phase("demo") == "Succeeded"
    promoted = rollouts.events("demo", reason="Promoted")
    assert [e["message"] for e in promoted] == [f"{me} opened confirm-promotion for this promotion: CAB-2 go"]
