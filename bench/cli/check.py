"""``diffbench check``: every path of the harness once, reduced, on the device (the rows:
``bench.timing.check``, ``bench.timing.check_training``, ``bench.projection.check``), each
against an expected value or bound; a table (or JSON/CSV) with the device, the versions
and the headline figures; exit code 1 when a row fails.

Heavy imports (torch, the model) happen inside the command body so ``--help`` is instant.
"""

from __future__ import annotations

from typing import Any

import typer

from bench.cli.options import (
    DeviceOption,
    FormatOption,
    OutOption,
    OutputFormat,
    ThreadsOption,
    validate_device,
)
from bench.cli.time import Tf32Option, set_tf32


def check_rows() -> dict[str, Any]:
    """Every row, in the order they run (the probe and the fine-tune use the pre-training
    row's checkpoint)."""
    from bench.projection.check import projection_row
    from bench.timing.check import TIMING_ROWS
    from bench.timing.check_training import TRAINING_ROWS

    training = dict(TRAINING_ROWS)
    ddp = training.pop("ddp")
    return {**TIMING_ROWS, **training, "projection": projection_row, "ddp": ddp}


def check_command(
    device: DeviceOption = "cpu",
    threads: ThreadsOption = None,
    tf32: Tf32Option = False,
    fmt: FormatOption = OutputFormat.table,
    out: OutOption = None,
) -> None:
    """Check every path on the device in a reduced configuration: the three FLOP
    counters, a timed train step per dtype, compile, pre-training with resume, a probe,
    a fine-tune, a whole-run projection, DDP (with 2+ GPUs). Each row is judged against an
    expected value or bound; exit code 1 when one fails. Run it first on a new machine
    (`diffbench check --device cuda`)."""
    validate_device(device)
    set_tf32(device, tf32)
    import tempfile
    from pathlib import Path

    import torch

    from bench.timing.check import CheckContext, run_rows
    from bench.timing.device import capture_environment, on_device

    if threads is not None:
        torch.set_num_threads(threads)
    where = torch.device(device)
    environment = capture_environment(where, "fp32")

    def progress(result) -> None:
        typer.echo(f"check {result.name}: {result.status} ({result.seconds:.1f} s)", err=True)

    with tempfile.TemporaryDirectory(prefix="diffbench-check-") as folder, on_device(where):
        results = run_rows(check_rows(), CheckContext(where, Path(folder)), progress)
    _emit(results, environment, fmt, out)
    failed = [r.name for r in results if r.status == "fail"]
    if failed:
        typer.echo(f"check failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def _emit(results, environment: dict[str, Any], fmt: OutputFormat, out) -> None:
    from bench.cli.output import emit, rows_table

    rows = [result.as_row() for result in results]
    meta = {
        "environment": environment,
        "passed": all(r.status != "fail" for r in results),
        "seconds": round(sum(r.seconds for r in results), 1),
    }
    title = (
        f"diffbench check on {environment['device_name']} ({environment['device']}), torch "
        f"{environment['torch_version']}, CUDA {environment.get('cuda_version') or '-'}, "
        f"Python {environment['python']}, {environment['torch_threads']} threads, "
        f"{environment['date']}; {meta['seconds']:.0f} s"
    )
    percent = lambda v: "" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    figures = rows_table(
        rows,
        ["check", "status", "device", "step_ms", "utilisation", "mfu", "peak_memory_mb",
         "seconds"],
        title=title,
        formatters={"utilisation": percent, "mfu": percent},
    )  # fmt: skip
    details = rows_table(rows, ["check", "measured", "expected"], title="what each row found")
    table = [figures, details]
    emit(rows, fmt, table=table, meta=meta, out=out)
