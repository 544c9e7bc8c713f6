"""The report's environment section: where the results and the report were produced,
side by side (hardware, threads, versions, git commit, command)."""

from __future__ import annotations

from typing import Any

from bench.report.document import Section
from bench.report.format import DASH
from bench.report.load import Inputs
from bench.report.tables import Column, Table, TableRow

_ENV_FIELDS = (
    ("date", ("date", "timestamp")),
    ("hardware", ("device_name", "cpu_model", "gpu_name")),
    ("device", ("device",)),
    ("CPU cores", ("cpu_count",)),
    ("torch threads", ("torch_threads", "threads")),
    ("torch", ("torch_version",)),
    ("python", ("python", "python_version")),
    ("platform", ("platform",)),
    ("git commit", ("git_commit",)),
    ("command", ("command",)),
)


def _env_value(env: dict[str, Any], keys: tuple[str, ...], label: str) -> str:
    if label == "torch":
        packages = env.get("packages") or {}
        value = packages.get("torch") or env.get("torch_version")
        return str(value) if value else DASH
    for key in keys:
        if env.get(key) not in (None, ""):
            return str(env[key])
    return DASH


def _packages(env: dict[str, Any]) -> str:
    packages = env.get("packages") or {}
    return ", ".join(f"{k} {v}" for k, v in packages.items() if k != "torch") or DASH


def environment_section(inputs: Inputs, own: dict[str, Any]) -> Section:
    sources: list[tuple[str, dict[str, Any]]] = []
    for ablation in inputs.ablations:
        sources.append(
            (f"results `{ablation.name}`", dict(ablation.payload.get("environment") or {}))
        )
        threads = sorted(
            {
                str((r.get("environment") or {}).get("torch_threads"))
                for r in ablation.records
                if r.get("environment")
            }
        )
        if threads and threads != [str(sources[-1][1].get("torch_threads"))]:
            sources[-1][1].setdefault("run_threads", ", ".join(threads))
    seen: set[str] = set()
    for run in inputs.runs:
        env = run.summary.get("environment") or {}
        signature = repr(
            sorted((k, str(v)) for k, v in env.items() if k not in ("date", "command"))
        )
        if signature not in seen:
            seen.add(signature)
            sources.append((f"run `{run.name}`", env))
    for result in inputs.times:
        sources.append((f"`{result.path.name}`", result.environment))
    for result in inputs.flops:
        sources.append(
            (
                f"`{result.path.name}`",
                {"command": "not recorded (flops JSON carries no environment)"},
            )
        )
    sources.append(("this report", own))
    sources = sources[:6] if len(sources) <= 6 else [*sources[:5], sources[-1]]
    columns = [Column("", "left"), *(Column(name, "left") for name, _ in sources)]
    table = Table(
        "environment",
        "Where the results and this report were produced",
        columns,
        [],
        css="environment",
    )
    for label, keys in _ENV_FIELDS:
        table.rows.append(TableRow([label, *(_env_value(env, keys, label) for _, env in sources)]))
    table.rows.append(TableRow(["packages", *(_packages(env) for _, env in sources)]))
    if any(env.get("run_threads") for _, env in sources):
        table.rows.append(
            TableRow(
                ["threads per run", *(str(env.get("run_threads", DASH)) for _, env in sources)]
            )
        )
    table.data = [
        {
            "source": name,
            **{k: v for k, v in env.items() if not isinstance(v, dict)},
            **{f"packages.{k}": v for k, v in (env.get("packages") or {}).items()},
        }
        for name, env in sources
    ]
    section = Section("environment", "Environment")
    section.tables.append(table)
    return section
