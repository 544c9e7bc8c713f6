"""The README is a front door, docs/ resolve inside the repository, CI runs what the README says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "reports" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Files outside the repository that earlier versions referred to (split so this file
# does not name them itself).
OUTSIDE_NAMES = ("DESIGN" + ".md", "PAPER-" + "NOTES", "../" + "shared", "/work/" + "shared")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.+)$", text, flags=re.M)}


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [m.group(1) for m in re.finditer(r"\]\(([^)\s]+)\)", text)]


def test_slug_matches_github_rules():
    assert _slug("Sensitivity: which of our choices reach the paper's figure") == (
        "sensitivity-which-of-our-choices-reach-the-papers-figure"
    )
    assert _slug("`diffbench flops`: FLOPs") == "diffbench-flops-flops"


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(page):
    for link in _links(page):
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        resolved = (page.parent / target).resolve() if target else page
        assert resolved.exists(), f"{page.name}: {link} does not exist"
        assert ROOT in resolved.parents or resolved == ROOT, f"{page.name}: {link} is outside"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no heading for #{anchor}"


def test_no_file_refers_to_files_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".pt"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{name}: {needle}" for needle in OUTSIDE_NAMES if needle in text]
    assert not offenders, offenders


def test_ci_runs_the_readme_install_and_test_commands():
    readme = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "pytest -q -n auto --maxprocesses 4 --dist loadfile --durations=15"
    for command in ("torch==2.13.0", '-e ".[dev,profiling,cluster]"', test_command):
        assert command in readme, command
        assert command in ci, command


def test_the_test_commands_plugin_is_installed_by_the_dev_extra():
    """``-n auto`` needs pytest-xdist: the README's install line must bring it."""
    dev = re.search(r"^dev = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S)
    assert dev and '"pytest-xdist' in dev.group(1)
