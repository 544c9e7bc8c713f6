"""The HTML report in a real browser (headless Chromium, offline): it renders (the screenshot
is not blank), the runs table has one row per grid row, and every image decodes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.report.render import render_report
from tests.test_report import build_results

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
PROBE = """
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var body = document.body;
  body.setAttribute("data-probe-rows", document.querySelectorAll("table.runs tbody tr").length);
  body.setAttribute("data-probe-images", images.length);
  body.setAttribute("data-probe-loaded",
    images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
  body.setAttribute("data-probe-done", "yes");
});
</script>
"""


def _browser() -> str | None:
    override = os.environ.get("DIFFBENCH_CHROMIUM")
    if override and Path(override).exists():
        return override
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


BROWSER = _browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium found (/usr/bin/chromium, chromium, google-chrome); "
    "install it with `apt-get install -y chromium` (.ci/run does)",
)


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    results = build_results(tmp_path_factory.mktemp("grid"))
    return render_report(results, ("html",), results / "report")["html"]


def test_report_renders_in_headless_chromium(rendered, tmp_path):
    from PIL import Image, ImageStat

    # the report itself carries no script: the probe goes into a copy
    page = tmp_path / "probe.html"
    page.write_text(rendered.read_text().replace("</body>", PROBE + "</body>"))
    dom = _run(["--virtual-time-budget=5000", "--dump-dom", page.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attributes = dict(re.findall(r'data-probe-([a-z]+)="([^"]*)"', body.group(0)))
    assert attributes.get("done") == "yes", body.group(0)
    assert attributes["rows"] == "4"  # mavil, cross-attn (failed), diffmavil, mavil-matched
    assert attributes["images"] == "6"
    assert attributes["loaded"] == attributes["images"]

    shot = tmp_path / "shot.png"
    taken = _run(
        [
            "--window-size=1366,900",
            f"--screenshot={shot}",
            "--virtual-time-budget=3000",
            rendered.as_uri(),
        ],
        tmp_path,
    )
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1366, 900)
        grey = image.convert("L")
        assert max(ImageStat.Stat(grey).var) > 0  # not blank
        assert len(grey.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16  # text, tables


WIDTH_PROBE = """
<script>
window.addEventListener("load", function () {
  var wide = [];
  document.querySelectorAll("div.scroll").forEach(function (box) {
    if (box.scrollWidth > box.clientWidth) {
      wide.push(box.querySelector("caption").textContent + ": " + box.scrollWidth + " > "
        + box.clientWidth);
    }
  });
  document.body.setAttribute("data-probe-wide", wide.join(" | "));
  document.body.setAttribute("data-probe-tables", document.querySelectorAll("div.scroll").length);
});
</script>
"""


def test_table2_report_tables_fit_a_1400_pixel_window(tmp_path):
    """At 1,400 px every table of the Table 2 report fits its column: none hides a column
    (the summary's verdicts) behind a horizontal scroll."""
    root = Path(__file__).resolve().parents[1]
    inputs = [root / "reports" / "table2", root / "reports" / "whole-run" / "headline-base.json"]
    html = render_report(inputs, ("html",), tmp_path / "report")["html"]
    page = tmp_path / "width.html"
    page.write_text(html.read_text().replace("</body>", WIDTH_PROBE + "</body>"))
    dom = _run(
        ["--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        tmp_path,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    attributes = dict(re.findall(r'data-probe-([a-z]+)="([^"]*)"', body.group(0)))
    assert int(attributes["tables"]) >= 10
    assert attributes["wide"] == ""
