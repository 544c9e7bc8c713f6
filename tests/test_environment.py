"""The run environment's git commit is read without writing to the repository."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from diffmavil.environment import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_git_commit_reads_the_status_without_rewriting_the_index(tmp_path):
    """A plain ``git status`` refreshes stale stat data and rewrites the index under
    ``index.lock`` (a lock left behind when it is killed at its timeout); ``git_commit``
    must leave the index file as it was, and still tell a clean tree from a dirty one."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "test@example.com")
    _git(tmp_path, "config", "user.name", "test")
    tracked = tmp_path / "tracked.txt"
    tracked.write_text("one\n")
    _git(tmp_path, "add", "tracked.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    os.utime(tracked, (1_000_000_000, 1_000_000_000))  # same content, stale stat data
    index = tmp_path / ".git" / "index"
    before = index.stat()
    assert git_commit(tmp_path) == _git(tmp_path, "rev-parse", "--short", "HEAD")
    after = index.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (tmp_path / ".git" / "index.lock").exists()
    tracked.write_text("two\n")
    assert git_commit(tmp_path).endswith("+dirty")
