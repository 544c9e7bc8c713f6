"""``diffbench report``: tables against hand-built records (written with the ablation
store's own writer), a real tiny pre-training run, flops/time JSON, well-formed and
self-contained HTML, skipped-plot notes, the paper's headline at base size only, bad input."""

from __future__ import annotations

import base64
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from bench.ablate.store import write_results
from bench.cli.app import app
from bench.report.render import render_report
from diffmavil.environment import environment

COMPONENTS = ("audio_encoder", "video_encoder", "fusion", "audio_decoder", "video_decoder", "other")
SHARES = (0.3, 0.2, 0.1, 0.2, 0.19, 0.01)
FAILURE = "non-finite loss at step 3 (loss=nan)"


def _record(row, seed, *, flops=None, wall=None, accuracy=None, status="completed", **extra):
    record = {
        "row": row,
        "kind": "row",
        "seed": seed,
        "run_id": f"{row}-{seed}",
        "status": status,
        "failure": None,
        "baseline": False,
        "preset": "cpu",
        "variant": "mavil",
        "masking": "fixed",
        "batch": "fixed",
        "budget_samples": 96,
        "match_flops_of": None,
        "planned_steps": 6,
        "planned_flops": flops,
        "differences": "",
        "wall_clock_comparable": True,
        "run_dir": f"/nonexistent/moved/{row}-{seed}",  # moved: found under <out>/runs/<id>
    }
    if flops is not None:
        record["total_flops"] = flops
        record["flops_by_component"] = {
            c: int(flops * s) for c, s in zip(COMPONENTS, SHARES, strict=True)
        }
    if wall is not None:
        record.update(
            wall_clock_seconds=wall,
            compute_seconds=0.9 * wall,
            data_seconds=0.1 * wall,
            samples_per_second=96 / wall,
            achieved_flops_per_second=flops / (0.9 * wall),
            steps=6,
            samples=96,
        )
    if accuracy is not None:
        record["probe"] = {
            "init": "checkpoint",
            "mode": "probe",
            "modality": "audio",
            "data": "synthetic",
            "accuracy": accuracy,
            "train_accuracy": 0.9,
        }
    record.update(extra)
    return record


def _metrics(adaptive: bool) -> list[dict]:
    rows, seen = [], 0
    for step in range(6):
        ratio = (0.8 + 0.02 * step, 0.9 + 0.01 * step) if adaptive else (0.8, 0.9)
        batch = 16 + 8 * (step // 3) if adaptive else 16
        seen += batch
        rows.append(
            {
                "step": step,
                "samples_seen": seen,
                "batch_size": batch,
                "audio_mask_ratio": ratio[0],
                "video_mask_ratio": ratio[1],
                "lr": 1e-4,
                "loss": 3.0 - 0.1 * step,
                "loss.audio_recon": 1.5 - 0.05 * step,
                "step_flops": 1e11,
                "compute_seconds": 1.0,
                "data_seconds": 0.1,
                "samples_per_second": batch / 1.1,
                "achieved_flops_per_second": 1e11,
            }
        )
    return rows


def build_results(out: Path, flops_only: bool = False) -> Path:
    """A grid's results: baseline over 3 seeds, the full recipe over 3 seeds, a row failed
    on every seed, a single-seed compute-matched control and a control probe."""
    if flops_only:
        records = [
            _record("mavil", 0, flops=1.0e12, status="planned", kind="flops", baseline=True),
            _record(
                "diffmavil",
                0,
                flops=0.8e12,
                status="planned",
                kind="flops",
                variant="cross-attn",
                masking="curriculum",
                batch="adaptive",
            ),
        ]
    else:
        records = [
            _record("mavil", s, flops=f, wall=w, accuracy=a, baseline=True)
            for s, f, w, a in ((0, 1.0e12, 100, 0.5), (1, 1.1e12, 110, 0.6), (2, 1.2e12, 120, 0.7))
        ]
        records += [
            _record("cross-attn", s, status="failed", failure=FAILURE, variant="cross-attn")
            for s in range(3)
        ]
        records += [
            _record(
                "diffmavil",
                s,
                flops=0.77e12,
                wall=88,
                accuracy=a,
                variant="cross-attn",
                masking="curriculum",
                batch="adaptive",
                differences="variant=cross-attn, masking.kind=curriculum",
            )
            for s, a in ((0, 0.61), (1, 0.60), (2, 0.62))
        ]
        records.append(
            _record(
                "mavil-matched",
                0,
                flops=0.77e12,
                wall=80,
                accuracy=0.55,
                match_flops_of="diffmavil",
                budget_samples=67,
            )
        )
        control = _record("control: fbank", 0, accuracy=0.4, kind="control")
        control["probe"]["init"] = "fbank"
        records.append(control)
        for run_id, adaptive in (("mavil-0", False), ("diffmavil-0", True)):
            run = out / "runs" / run_id
            run.mkdir(parents=True)
            lines = [json.dumps(r) for r in _metrics(adaptive)]
            (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    meta = {
        "grid": "fixture",
        "description": "hand-built records",
        "seeds": [0, 1, 2],
        "baseline": "mavil",
        "flops_only": flops_only,
        "executor": "local",
        "environment": environment("cpu"),
    }
    write_results(out, records, meta, complete=True)
    return out


def test_results_name_run_dirs_relative_to_the_output_and_the_report_finds_them(
    tmp_path: Path, monkeypatch
):
    """A grid's results name each run directory relative to the grid's output directory
    (``runs/<run id>``), however --out was given, and the report finds the runs' logs
    there from any working directory."""
    from bench.report.load import load_ablation

    out = tmp_path / "grid"
    run = out / "runs" / "renamed-0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in _metrics(False)))
    record = _record("mavil", 0, flops=1.0e12, wall=100, accuracy=0.5, baseline=True)
    meta = {"grid": "relative", "seeds": [0], "environment": environment("cpu")}
    write_results(out, [{**record, "run_dir": str(run)}], meta, complete=True)
    stored = json.loads((out / "results.json").read_text())
    assert stored["records"][0]["run_dir"] == "runs/renamed-0"
    assert (out / "results.csv").read_text().count("runs/renamed-0") == 1
    monkeypatch.chdir(tmp_path / "grid" / "runs")  # not where the results are
    assert load_ablation(out).metrics["mavil-0"]  # found through runs/renamed-0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = build_results(tmp_path_factory.mktemp("results"))
    out = results / "rendered"
    written = render_report(results, ("md", "html"), out, command="pytest fixture")
    return {"results": results, "out": out, **written}


def _md_table(text: str, title: str) -> list[list[str]]:
    """The rows of the markdown pipe table under **title** (header row first)."""
    block = text.split(f"**{title}**", 1)[1].strip().splitlines()
    rows = []
    for line in block:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not all(re.fullmatch(r":?-+:?", c) for c in cells):
            rows.append(cells)
    return rows


def _column(rows: list[list[str]], label: str) -> dict[str, str]:
    index = rows[0].index(label)
    return {row[0]: row[index] for row in rows[1:]}


def test_markdown_runs_table_rows_and_values(report):
    text = report["md"].read_text()
    rows = _md_table(text, "Pre-training cost and downstream result per row")
    assert [r[0] for r in rows[1:]] == [
        "mavil (baseline)",
        "cross-attn",
        "diffmavil",
        "mavil-matched (compute-matched to diffmavil)",
    ]
    flops = _column(rows, "pre-train FLOPs")
    assert flops["mavil (baseline)"] == "1.10 T"  # mean of 1.0, 1.1, 1.2 T
    # deltas paired by seed: the mean of 0.77 / (1.0, 1.1, 1.2) - 1, not 0.77 / 1.1 - 1
    assert _column(rows, "Δ FLOPs")["diffmavil"] == "−29.6%"
    assert _column(rows, "wall-clock")["mavil (baseline)"] == "1.8 min"  # 110 s
    assert _column(rows, "Δ wall-clock")["diffmavil"] == "−19.6%"  # 88 / (100, 110, 120)
    accuracy = _column(rows, "accuracy % (mean ± sd)")
    assert accuracy["mavil (baseline)"] == "60.0 ± 10.0"
    assert accuracy["diffmavil"] == "61.0 ± 1.0"
    ci = _column(rows, "95% CI")
    # the interval of the mean accuracy on the logit scale: inside [0, 100], where the plain
    # t interval 60 ± t(0.975, 2) * 10 / sqrt(3) is [35.2, 84.8]
    assert ci["mavil (baseline)"] == "[34.8, 80.9]"
    assert ci["diffmavil"] == "[58.5, 63.5]"
    assert ci["mavil-matched (compute-matched to diffmavil)"] == "single seed"
    n = _column(rows, "n")
    assert n["mavil-matched (compute-matched to diffmavil)"] == "1 (seed 0, single seed)"
    assert n["mavil (baseline)"] == "3 (seeds 0,1,2)"
    assert _column(rows, "Δ accuracy (points)")["diffmavil"] == "+1.0"
    status = _column(rows, "status")
    assert status["cross-attn"] == f"failed: {FAILURE}"
    assert flops["cross-attn"] == "—"


def test_component_and_downstream_tables(report):
    text = report["md"].read_text()
    parts = _md_table(text, "Pre-training FLOPs per component (share of the run)")
    assert parts[0][1:7] == list(COMPONENTS)
    assert _column(parts, "audio_encoder")["mavil"] == "330.00 G (30.0%)"
    down = _md_table(text, "Downstream accuracy (probe) per row, with controls")
    assert _column(down, "accuracy % (mean ± sd)")["control: fbank"] == "40.0"
    # paired on the one seed both have: 40 - 50 at seed 0 (not 40 - the 3-seed mean 60)
    assert _column(down, "Δ vs baseline (points)")["control: fbank"] == "−10.0"
    assert _column(down, "init")["control: fbank"] == "fbank"


def test_plots_are_written_with_their_csv(report):
    text = report["md"].read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(images) == 6  # components, schedules, throughput, loss, accuracy, savings
    for name in images:
        png = report["out"] / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (report["out"] / name.replace(".png", ".csv")).exists()
    stacked = (report["out"] / "ablation-fixture-flops-by-component.csv").read_text().splitlines()
    assert stacked[0] == "label,component,flops"
    assert "mavil,audio_encoder,330000000000.0" in stacked  # mean of the seeds' components
    with (report["out"] / "ablation-fixture-schedules.csv").open() as handle:
        schedule = list(csv.DictReader(handle))
    last = [r for r in schedule if r["label"] == "diffmavil"][-1]
    assert (last["batch"], last["samples_seen"], last["batch_size"]) == ("adaptive", "120", "24")
    assert float(last["audio_mask_ratio"]) == pytest.approx(0.9)
    assert {r["label"] for r in schedule} == {"mavil", "diffmavil"}  # rows with metrics.jsonl


def test_paper_headline_is_beside_base_size_figures_only(report):
    from bench.flops import run_saving
    from diffmavil.config import make_config
    from diffmavil.schedules import BatchSchedule, MaskingSchedule

    text = report["md"].read_text()
    sections = {s.split("\n", 1)[0]: s for s in text.split("\n## ")[1:]}
    paper = sections["The paper's headline vs our base-size figures"]
    saving = run_saving(
        make_config("base", "cross-attn"),
        MaskingSchedule(kind="curriculum"),
        BatchSchedule(kind="adaptive", batch_size=32),
        2_000_000,
    )["saving"]
    headline = _md_table(paper, "Pre-training saving of DiffMAViL vs MAViL")
    assert headline[1][:3] == ["pre-training FLOPs", "−32%", f"−{100 * saving:.1f}%"]
    assert headline[2][:3] == ["pre-training wall-clock", "−18%", "not measured"]
    for title, body in sections.items():
        if title != "The paper's headline vs our base-size figures":
            assert "−32%" not in body and "−18%" not in body, title
    assert "**choice: curriculum end points**" in paper and "**choice: batch rule**" in paper
    assert "**Sensitivity" not in paper  # the compact headline; the sweep is further down
    further_down = sections["Sensitivity of the base-size saving to our choices"]
    sensitivity = _md_table(
        further_down,
        further_down.split("**Sensitivity", 1)[1].split("**", 1)[0].join(["Sensitivity", ""]),
    )
    assumptions = {row[0] for row in sensitivity[1:]}
    assert {"decoder width", "curriculum end", "batch rule"} <= assumptions
    assert "not** comparable" in sections["Ablation grid `fixture`"]


def test_html_is_well_formed_and_self_contained(report):
    text = report["html"].read_text()
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.stack == [], f"unclosed tags: {checker.stack}"
    assert checker.errors == []
    assert 'src="http' not in text and "<link" not in text.lower()
    assert "<script" not in text.lower()
    assert len(checker.images) == 6
    for src in checker.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert checker.runs_rows == 4


class _TagChecker(HTMLParser):
    VOID: ClassVar[set[str]] = {"meta", "img", "br", "hr", "input", "link", "col", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.runs_rows = 0
        self._table: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table":
            self._table.append(attrs.get("class") or "")
        if tag == "tr" and self._table and self._table[-1] == "runs" and "tbody" in self.stack:
            self.runs_rows += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "table":
            self._table.pop()


def test_flops_only_results_skip_plots_with_a_note(tmp_path):
    results = build_results(tmp_path / "grid", flops_only=True)
    written = render_report(results, ("md",), tmp_path / "out")
    text = written["md"].read_text()
    rows = _md_table(text, "Pre-training cost and downstream result per row")
    assert rows[0] == ["row", "change", "n", "pre-train FLOPs", "Δ FLOPs", "status"]
    assert _column(rows, "Δ FLOPs")["diffmavil"] == "−20.0%"
    assert _column(rows, "status")["diffmavil"] == "planned"
    for plot in (
        "Schedules",
        "Throughput",
        "Loss curves",
        "Accuracy vs FLOPs",
        "Time saving vs FLOP saving",
    ):
        assert f"- {plot}: skipped (" in text
    assert "ablation-fixture-flops-by-component.png" in text


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory):
    from diffmavil.training.config import PretrainConfig
    from diffmavil.training.pretrain import pretrain

    config = PretrainConfig.model_validate(
        {
            "preset": "tiny",
            "variant": "cross-attn",
            "data": "synthetic:classes=2,size=16,eval_size=8",
            "budget_samples": 16,
            "batch": {"batch_size": 8, "kind": "adaptive"},
            "masking": {"kind": "curriculum"},
            "threads": 1,
            "checkpoint_every": 100,
        }
    )
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-run"
    summary = pretrain(config, run_dir)
    return run_dir, summary


def test_report_on_a_real_pretrain_run(pretrain_run, tmp_path):
    from bench.report.format import si
    from bench.schema import SCHEMA_VERSION
    from diffmavil.training.pretrain import SUMMARY_SCHEMA_VERSION

    assert SCHEMA_VERSION == SUMMARY_SCHEMA_VERSION  # in step with the writer
    run_dir, summary = pretrain_run
    written = render_report(run_dir, ("md", "html"), tmp_path / "out")
    text = written["md"].read_text()
    rows = _md_table(text, "One row per pre-training run")
    assert len(rows) == 2 and rows[1][0] == "tiny-run"
    assert _column(rows, "pre-train FLOPs")["tiny-run"] == si(summary["total_flops"])
    assert _column(rows, "steps")["tiny-run"] == str(summary["steps"])
    assert _column(rows, "batch")["tiny-run"] == "adaptive"
    schedule = (tmp_path / "out" / "pretrain-schedules.csv").read_text().splitlines()
    assert len(schedule) == 1 + summary["steps"]  # one row per logged step
    assert "tiny-run" in (tmp_path / "out" / "pretrain-loss.csv").read_text()
    assert "skipped" not in text.split("## Pre-training runs", 1)[1].split("## ", 1)[0]


def _time_payload() -> dict:
    common = {
        "preset": "tiny",
        "batch_size": 8,
        "mask_ratio": "0.8,0.9",
        "repeats": 10,
        "warmup": 2,
        "matmul_gflops_per_s": 150.0,
    }
    rows = []
    for variant, ms in (("mavil", 100.0), ("cross-attn", 80.0)):
        rows.append(
            {
                "kind": "step",
                "variant": variant,
                "implementation": "ours",
                "component": "train_step",
                "phase": "step",
                "median_ms": ms,
                "iqr_ms": 2.0,
                "samples_per_s": 8 / (ms / 1e3),
                "achieved_gflops_per_s": 50.0,
                "utilisation": 0.33,
                **({"aten_ops": 4010} if variant == "cross-attn" else {}),  # a file without it
                **common,
            }
        )
        for name in COMPONENTS[:5]:
            rows.append(
                {
                    "kind": "component",
                    "variant": variant,
                    "implementation": "ours",
                    "component": name,
                    "phase": "fwd+bwd",
                    "median_ms": ms / 5,
                    "flops": 10**9,
                    **common,
                }
            )
    rows.append(
        {
            "kind": "saving",
            "variant": "cross-attn",
            "baseline": "mavil",
            "component": "train_step",
            "phase": "fwd+bwd",
            "flop_saving": 0.15,
            "time_saving": 0.2,
            "time_per_flop_saving": 1.333,
            **common,
        }
    )
    environment = {
        "device": "cpu",
        "device_name": "Test CPU",
        "threads": 2,
        "torch_version": "2.13.0+cpu",
        "dtype": "fp32",
    }
    return {"environment": environment, "configs": {}, "rows": rows}


def test_flops_and_time_json_in_one_directory(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "flops",
            "--variant",
            "mavil",
            "--variant",
            "cross-attn",
            "--counter",
            "analytic",
            "--format",
            "json",
            "--out",
            str(folder / "flops.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    breakdown = json.loads((folder / "flops.json").read_text())["rows"]
    (folder / "time.json").write_text(json.dumps(_time_payload()))
    (folder / "notes.json").write_text('{"unrelated": true}')  # ignored inside a directory
    written = render_report(folder, ("md",), tmp_path / "out")
    text = written["md"].read_text()
    flops = _md_table(text, "One row per variant (one training step)")
    total = {r["variant"]: r for r in breakdown if r["component"] == "total"}
    assert [r[0] for r in flops[1:]] == ["mavil", "cross-attn"]
    from bench.report.format import si

    assert _column(flops, "forward + backward")["cross-attn"] == si(
        total["cross-attn"]["total_flops"]
    )
    assert _column(flops, "Δ vs mavil")[
        "cross-attn"
    ] == f"{total['cross-attn']['delta_percent']:+.1f}%".replace("-", "−")
    times = _md_table(text, "Train step (forward, backward, optimizer) per variant")
    assert _column(times, "median")["cross-attn"] == "80.0 ms"
    assert _column(times, "Δ time")["cross-attn"] == "−20.0%"
    assert _column(times, "ATen ops") == {"mavil": "—", "cross-attn": "4,010"}
    parts = _md_table(
        text, "Time per component, forward + backward (median ms; each component timed on its own)"
    )
    assert _column(parts, "video_decoder")["mavil"] == "20.0 ms (1.00 GFLOP)"
    assert "Test CPU" in text


def test_cli_writes_the_requested_formats(report, tmp_path):
    result = CliRunner().invoke(
        app, ["report", str(report["results"]), "--format", "html", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").exists()
    assert not (tmp_path / "r" / "report.md").exists()
    assert "diffbench report" in (tmp_path / "r" / "report.html").read_text()


def _bad(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file or directory"),
        ("empty", "nothing to report"),
        ("other-version", "results schema_version 99; this diffbench reads 1"),
        ("corrupt", "corrupt JSON"),
        ("no-records", "no records"),
        ("summary-version", "summary schema_version 7"),
        ("bad-format", "--format 'pdf': allowed values are md, html, latex"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, case, message):
    args = []
    if case == "missing":
        target = tmp_path / "does-not-exist"
    elif case == "empty":
        target = _bad(tmp_path, "empty")
    elif case == "other-version":
        target = _bad(tmp_path, "v99")
        (target / "results.json").write_text(json.dumps({"schema_version": 99, "records": []}))
    elif case == "corrupt":
        target = _bad(tmp_path, "corrupt")
        (target / "results.json").write_text('{"schema_version": 1, "records": [')
    elif case == "no-records":
        target = _bad(tmp_path, "none")
        (target / "results.json").write_text(json.dumps({"schema_version": 1, "records": []}))
    elif case == "summary-version":
        target = _bad(tmp_path, "run")
        (target / "summary.json").write_text(json.dumps({"schema_version": 7, "kind": "pretrain"}))
    else:
        target = build_results(tmp_path / "ok", flops_only=True)
        args = ["--format", "pdf"]
    result = CliRunner().invoke(app, ["report", str(target), *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0]
    assert not (tmp_path / "o").exists()  # nothing written
