"""A headless Debian chromium, driven by selenium, that cannot reach past 127.0.0.1.

Whatever a page does, the browser resolves no host but 127.0.0.1 (every other name maps
to not-found in its own resolver) and its own background traffic (updates, sync,
safe browsing, metrics, component downloads) is switched off, so nothing leaves the
machine. What the page itself asked for is read back from the performance log.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver",)

#: Flags that keep chromium's own traffic off the network.
QUIET_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
)


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) from PATH, or None (`make browser` installs both)."""
    browser = next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)
    driver = next((p for n in DRIVER_NAMES if (p := shutil.which(n))), None)
    return (browser, driver) if browser and driver else None


def start_chromium(browser: str, driver: str, profile: Path, width: int = 1280,
                   height: int = 800) -> Any:  # fmt: skip
    """A headless chromium under selenium, with console and network logging on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        f"--window-size={width},{height}", f"--user-data-dir={profile}", *QUIET_FLAGS,
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    session.set_window_size(width, height)
    return session


@dataclass(frozen=True)
class Logs:
    requests: list[str]  # every URL the page asked for, in order
    headers: list[dict[str, str]]  # the headers the page set on each of them
    console: list[dict[str, Any]]  # console messages and page errors


def drain_logs(session: Any) -> Logs:
    """What the page requested and printed since the last drain."""
    requests, headers = [], []
    for entry in session.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
            headers.append(message["params"]["request"].get("headers", {}))
    return Logs(requests=requests, headers=headers, console=session.get_log("browser"))


def is_local(url: str) -> bool:
    """An URL answered on this machine: 127.0.0.1, an in-page blob: of it, data:, or
    chrome:// (the browser's built-in pages and icons, served from inside it)."""
    from urllib.parse import urlsplit

    if url.startswith(("data:", "chrome://")):
        return True
    if url.startswith("blob:"):
        url = url[len("blob:") :]
    return urlsplit(url).hostname == "127.0.0.1"


def wait_for(session: Any, script: str, timeout_s: float = 60.0) -> Any:
    """Poll ``return <script>`` in the page until it is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(session, timeout_s, poll_frequency=0.1).until(
        lambda s: s.execute_script(f"return {script}")
    )


#: The bytes of what the grid <img> shows (a blob: URL of the page), base64-encoded.
GRID_BYTES_JS = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById("grid").src)
  .then((r) => r.arrayBuffer())
  .then((b) => {
    let s = "";
    for (const x of new Uint8Array(b)) s += String.fromCharCode(x);
    done(btoa(s));
  })
  .catch((e) => done("error: " + e));
"""


def grid_bytes(session: Any) -> bytes:
    import base64

    encoded = session.execute_async_script(GRID_BYTES_JS)
    assert not encoded.startswith("error"), encoded
    return base64.b64decode(encoded)


def screenshot(session: Any, path: Path, width: int = 1280, height: int = 800) -> None:
    """A PNG of the viewport at exactly width x height CSS pixels, scale 1."""
    session.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    session.save_screenshot(str(path))
