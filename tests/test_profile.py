"""``diffbench profile``: a trace directory Perfetto / torch-tb-profiler open (valid Chrome
trace JSON with the component labels) and the top operators per component."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bench.cli.app import app
from bench.timing.tasks import TIMED_COMPONENTS


def test_profile_writes_a_labelled_trace_and_top_ops(one_thread, tmp_path):
    result = CliRunner().invoke(
        app,
        ["profile", "--preset", "tiny", "--batch-size", "2", "--variant", "cross-attn",
         "--threads", "1", "--out-dir", str(tmp_path / "trace"), "-f", "json", "--top", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    files = list((tmp_path / "trace").glob("*.pt.trace.json"))
    assert [str(f) for f in files] == payload["trace_files"]
    trace = json.loads(files[0].read_text())
    names = {event.get("name") for event in trace["traceEvents"]}
    for label in (*TIMED_COMPONENTS, "train_step/forward", "train_step/backward"):
        assert label in names
    rows = payload["rows"]
    seen = {(r["component"], r["pass"]) for r in rows}
    for component in TIMED_COMPONENTS:
        assert (component, "forward") in seen and (component, "backward") in seen
    assert all(1 <= r["rank"] <= 3 and r["op"].startswith("aten::") for r in rows)
    # the matmuls of the blocks are attributed to their components in both passes
    ops = {(r["component"], r["pass"]): r["op"] for r in rows if r["rank"] >= 1}
    assert any("mm" in r["op"] for r in rows if r["component"] == "fusion")
    assert ops


def test_profile_rejects_bad_dtype(tmp_path):
    result = CliRunner().invoke(
        app, ["profile", "--preset", "tiny", "--dtype", "float8", "--out-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "'float8' is not one of 'fp32', 'bf16'" in result.output
