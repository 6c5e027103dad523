"""The report in a real browser: headless Chromium loads it from the file system with no console
messages, every <img> decodes (naturalWidth > 0), nothing overflows sideways; a screenshot.

Why Chromium's own command line and no driver library: `--dump-dom` runs a page to its load
event and prints the resulting DOM, so a tiny probe script (injected into a copy of the page,
beside it so relative paths resolve the same) can record image and resource errors into the
DOM; console messages go to Chromium's log (`--enable-logging=stderr`, lines `INFO:CONSOLE`).
Skipped, with the reason, only when no Chromium binary is found (`apt-get install chromium`;
or point GOODHART_CHROMIUM at one). Set GOODHART_REPORT_SCREENSHOT=PATH to keep the screenshot.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from goodhartlab.analysis.report import build_report

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome",
              "headless_shell")  # fmt: skip
WIDTH = 1280
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t.tagName ? "failed to load " + t.tagName + " " +
    (t.getAttribute("src") || t.getAttribute("href")) : "error " + e.message);
}, true);
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
    .map(function (i) { return i.getAttribute("src"); });
  var out = document.createElement("pre");
  out.id = "__probe";
  out.textContent = JSON.stringify({images: imgs.length, bad: bad, errors: window.__errors,
    width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    env = os.environ.get("GOODHART_CHROMIUM")
    if env:
        return env if shutil.which(env) or Path(env).is_file() else None
    return next((p for name in CANDIDATES if (p := shutil.which(name))), None)


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_in_headless_chromium(fake_runs: Path, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        reason = "no chromium binary found (apt-get install -y chromium, or set GOODHART_CHROMIUM)"
        print(reason)
        pytest.skip(reason)
    report = build_report([fake_runs], tmp_path / "out", intro="browser test")
    page = report.read_text()
    probe = report.with_name("_probe.html")
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    profile = tmp_path / "profile"

    loaded = chromium(binary, profile, "--dump-dom", probe.as_uri())
    match = re.search(r'<pre id="__probe">(.*?)</pre>', loaded.stdout, re.S)
    assert match, f"no probe output (rc {loaded.returncode}): {loaded.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    assert result["images"] == page.count("<img ") >= 6
    assert result["bad"] == [], result
    assert result["errors"] == [], result
    assert result["width"] <= WIDTH, f"the page scrolls sideways: {result['width']} px"

    plain = chromium(binary, profile, "--dump-dom", report.as_uri())  # the page as shipped
    assert console_lines(plain.stderr) == [], console_lines(plain.stderr)
    assert "<img" in plain.stdout

    shot = tmp_path / "report.png"
    height = min(int(result["height"]) + 40, 20000)
    shown = chromium(binary, profile, f"--window-size={WIDTH},{height}", f"--screenshot={shot}",
                     report.as_uri())  # fmt: skip
    assert shot.exists(), shown.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    keep = os.environ.get("GOODHART_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
    print(f"screenshot: {keep or shot}")
