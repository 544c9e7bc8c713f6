"""Golden outputs: what each command prints with ``--format json`` on fixed small inputs,
and each committed report regenerated from its committed results, pinned to the byte.

They guard refactors of the harness: moving or retyping code must not change a single
output. Measured values (seconds, rates, memory, timestamps, paths of temporary
directories) cannot be pinned: each case names the keys it masks, and every other value is
compared exactly, so a mask hides a measurement and nothing else.

Rewrite the goldens after a deliberate change of output (and say why in the commit):

    DIFFBENCH_UPDATE_GOLDENS=1 python -m pytest -q tests/test_goldens.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
GOLDENS = Path(__file__).parent / "goldens"
UPDATE = os.environ.get("DIFFBENCH_UPDATE_GOLDENS") == "1"
MASK = "<measured>"
runner = CliRunner()

# Keys whose values are measurements or depend on the machine, the clock or the temporary
# directory; masked wherever they appear in a case that lists them.
TIMING_KEYS = (
    r".*seconds.*",
    r".*_s",
    r".*_ms",
    r".*per_s.*",
    r".*per_second.*",
    r".*flop_s.*",
    r"utilisation.*",
    r"mfu.*",
    r".*memory.*",
    r".*_bytes",
    r"speed.*",
    r"ratio_.*",
    r"median.*",
    r".*spread.*",
    r".*_ci_.*",
    r"started.*",
    r"finished.*",
    r"created.*",
    r"timestamp",
    r"host.*",
    r"pid",
    r"load.*",
    r"data_to_compute",
    r"components_share",
    r"time_saving",
    r"delta_(compute|wall_clock)_pct",
)
# The machine that ran the command: hardware, versions, clock, commit, command line.
ENVIRONMENT_KEYS = (r"environment",)
# The same facts where a row carries them flat (``diffbench time``'s rows).
MACHINE_KEYS = (
    r"cpu_model", r"cpu_count", r"device_name", r"gpu_name", r"platform", r"python",
    r"torch_version", r"cuda_version", r"interop_threads",
)  # fmt: skip
RUN_KEYS = (r"run_dir", r"checkpoint", r"path", r"out", r"results", r"report.*", r"trace.*")


@dataclass(frozen=True)
class Case:
    """One command line and the keys of its JSON output that hold measurements."""

    name: str
    argv: tuple[str, ...]
    masked: tuple[str, ...] = ENVIRONMENT_KEYS
    setup: tuple[str, ...] = field(default=())  # a case this one reads the output dir of
    # Trained values (losses, accuracies) are pinned to this many significant digits: the
    # last bits of a float sum differ between CPU instruction sets (AVX2 vs AVX-512).
    digits: int | None = None


def _cases(tmp: Path) -> list[Case]:
    demo = tmp / "demo"
    smoke = tmp / "smoke"
    return [
        Case("info-tiny", ("info", "--preset", "tiny", "--format", "json")),
        Case(
            "info-proportions",
            ("info", "--preset", "proportional", "--proportions", "--format", "json"),
        ),
        Case(
            "flops-tiny-all-counters",
            (
                "flops",
                "--preset",
                "tiny",
                "-v",
                "mavil",
                "-v",
                "cross-attn",
                "--counter",
                "all",
                "--backward",
                "--device",
                "cpu",
                "--format",
                "json",
            ),
            masked=(r"seconds", *ENVIRONMENT_KEYS),
        ),
        Case(
            "flops-base-analytic",
            (
                "flops",
                "-v",
                "mavil",
                "-v",
                "cross-attn",
                "--counter",
                "analytic",
                "--mask-ratio",
                "0.8,0.9",
                "--format",
                "json",
            ),
            masked=(r"seconds", *ENVIRONMENT_KEYS),
        ),
        Case(
            "flops-tiny-whole-run",
            (
                "flops",
                "--preset",
                "tiny",
                "-v",
                "mavil",
                "-v",
                "cross-attn",
                "--counter",
                "analytic",
                "--masking",
                "curriculum",
                "--batch",
                "adaptive",
                "--samples",
                "4096",
                "--format",
                "json",
            ),
            masked=(r"seconds", *ENVIRONMENT_KEYS),
        ),
        Case(
            "flops-tiny-sensitivity",
            ("flops", "--preset", "tiny", "--sensitivity", "--format", "json"),
            masked=(r"seconds", *ENVIRONMENT_KEYS),
        ),
        Case(
            "time-tiny",
            (
                "time",
                "--preset",
                "tiny",
                "-v",
                "mavil",
                "-v",
                "cross-attn",
                "--batch-size",
                "2",
                "--repeats",
                "2",
                "--warmup",
                "1",
                "--matmul-repeats",
                "2",
                "--threads",
                "1",
                "--format",
                "json",
            ),
            masked=(*TIMING_KEYS, *ENVIRONMENT_KEYS, *MACHINE_KEYS),
        ),
        Case(
            "data-show-synthetic",
            (
                "data",
                "show",
                "synthetic:classes=4,size=8,eval_size=4",
                "--preset",
                "tiny",
                "--format",
                "json",
            ),
            digits=6,  # fbank statistics: their last bits differ between CPU instruction sets
        ),
        Case(
            "data-stats-synthetic",
            (
                "data",
                "stats",
                "synthetic:classes=4,size=8,eval_size=4",
                "--preset",
                "tiny",
                "--max-items",
                "4",
                "--format",
                "json",
            ),
            digits=6,  # an fbank mean over threads (the sum order varies) and CPUs
        ),
        Case(
            "pretrain-tiny",
            (
                "pretrain",
                "--preset",
                "tiny",
                "--data",
                "synthetic:classes=4,size=64",
                "--samples",
                "64",
                "--batch-size",
                "16",
                "--masking",
                "curriculum",
                "--batch",
                "adaptive",
                "--threads",
                "1",
                "--run-dir",
                str(demo),
                "--no-progress",
                "--format",
                "json",
            ),
            masked=(*TIMING_KEYS, *RUN_KEYS, *ENVIRONMENT_KEYS),
            digits=4,
        ),
        Case(
            "finetune-probe-tiny",
            (
                "finetune",
                str(demo),
                "--data",
                "synthetic:classes=4,size=64,eval_size=32",
                "--epochs",
                "5",
                "--format",
                "json",
            ),
            masked=(*TIMING_KEYS, *RUN_KEYS, *ENVIRONMENT_KEYS),
            setup=("pretrain-tiny",),
            digits=4,
        ),
        Case(
            "ablate-smoke",
            (
                "ablate",
                "--grid",
                str(ROOT / "ablations" / "smoke.yaml"),
                "--out",
                str(smoke),
                "--no-report",
                "--no-progress",
                "--format",
                "json",
            ),
            masked=(*TIMING_KEYS, *RUN_KEYS, *ENVIRONMENT_KEYS),
            digits=4,
        ),
        Case(
            "migrate-table2-flops-v1",
            ("migrate", str(tmp / "v1" / "results.json"), "--format", "json"),
            masked=(*RUN_KEYS, *ENVIRONMENT_KEYS),
        ),
    ]


def _masked(value: Any, patterns: tuple[str, ...]) -> Any:
    """``value`` with every entry under a key matching ``patterns`` replaced by MASK."""
    if isinstance(value, dict):
        return {
            key: MASK
            if any(re.fullmatch(p, str(key)) for p in patterns) and item is not None
            else _masked(item, patterns)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item, patterns) for item in value]
    return value


def _rounded(value: Any, digits: int | None) -> Any:
    if digits is None:
        return value
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item, digits) for item in value]
    return value


def _canonical(payload: Any) -> str:
    return json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _compare(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden {path.name}: run with DIFFBENCH_UPDATE_GOLDENS=1"
    expected = path.read_text()
    assert text == expected, f"{path.name} differs from its golden"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("goldens")
    (tmp / "v1").mkdir()
    shutil.copy(
        Path(__file__).parent / "fixtures" / "table2-flops-results-v1.json",
        tmp / "v1" / "results.json",
    )
    return tmp


CASE_NAMES = [case.name for case in _cases(Path("."))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_command_json_matches_its_golden(name: str, workdir: Path, request) -> None:
    cases = {case.name: case for case in _cases(workdir)}
    case = cases[name]
    for needed in case.setup:  # the cases a case reads from run first (once per module)
        _run_once(cases[needed], workdir, request)
    payload = _run_once(case, workdir, request)
    text = _canonical(_rounded(_masked(payload, case.masked), case.digits)).replace(
        str(workdir), "<tmp>"
    )
    _compare(GOLDENS / "cli" / f"{name}.json", text)


_OUTPUTS: dict[tuple[str, str], Any] = {}


def _run_once(case: Case, workdir: Path, request) -> Any:
    key = (str(workdir), case.name)
    if key not in _OUTPUTS:
        result = runner.invoke(app, list(case.argv), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        _OUTPUTS[key] = json.loads(result.stdout)
    return _OUTPUTS[key]


# Committed reports regenerated from the results committed beside them. The sections that
# need per-step logs (metrics.jsonl of run directories that are not committed) are skipped
# by the regeneration; everything else is pinned.
REPORTS = {
    "table2": ("reports/table2", "reports/whole-run/headline-base.json"),
    "table2-flops": ("reports/table2-flops",),
    "pilot": ("reports/pilot",),
    "pretraining-gain": ("reports/pretraining-gain",),
}
GENERATED_LINE = re.compile(r"Generated \S+ from ")
EMBEDDED_IMAGE = re.compile(r'src="data:image/png;base64,[^"]*"')  # PNG bytes: not pinned


ENVIRONMENT_CAPTION = "Where the results and this report were produced"
HTML_LAST_CELL = re.compile(r"(<td[^>]*>)(?:(?!</td>).)*(</td></tr>)")


def _this_machine_masked(text: str, suffix: str) -> str:
    """The environment table's "this report" column (the machine regenerating the report)
    masked; the column of the machine that produced the results stays pinned."""
    if suffix == ".csv":
        return re.sub(r"^this report,.*$", "this report,<this machine>", text, flags=re.M)
    if ENVIRONMENT_CAPTION not in text:
        return text
    head, tail = text.split(ENVIRONMENT_CAPTION, 1)
    if suffix == ".html":
        table, rest = tail.split("</table>", 1)
        return (
            head
            + ENVIRONMENT_CAPTION
            + HTML_LAST_CELL.sub(r"\1<this machine>\2", table)
            + ("</table>" + rest)
        )
    lines = tail.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("| ") and not line.startswith("| :"):
            cells = line.split(" | ")
            lines[i] = " | ".join([*cells[:-1], "<this machine> |"])
        elif i > 2 and not line.strip():
            break
    return head + ENVIRONMENT_CAPTION + "\n".join(lines)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_committed_report_regenerates_to_its_golden(name: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / name
    result = runner.invoke(
        app,
        ["report", *REPORTS[name], "--format", "md,html", "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for path in sorted(out.glob("*.md")) + sorted(out.glob("*.csv")) + sorted(out.glob("*.html")):
        text = GENERATED_LINE.sub("Generated <time> from ", path.read_text())
        text = EMBEDDED_IMAGE.sub('src="<png>"', text)
        text = _this_machine_masked(text, path.suffix)
        text = text.replace(str(out), "<out>")
        _compare(GOLDENS / "reports" / name / path.name, text)
    if not UPDATE:  # no golden file went missing from the output either
        produced = {p.name for p in out.iterdir() if p.suffix in (".md", ".csv", ".html")}
        pinned = {p.name for p in (GOLDENS / "reports" / name).iterdir()}
        assert produced == pinned
