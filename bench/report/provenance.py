"""The report's environment section: where the results and the report were produced,
side by side (hardware, threads, versions, git commit, command), from each input's typed
environment block (``diffmavil.environment.Environment``)."""

from __future__ import annotations

from bench.report.document import Section
from bench.report.format import DASH
from bench.report.load import Inputs
from bench.report.tables import Column, Table, TableRow
from diffmavil.environment import Environment

_ENV_FIELDS = (
    ("date", "date"),
    ("hardware", "device_name"),
    ("device", "device"),
    ("CPU cores", "cpu_count"),
    ("torch threads", "torch_threads"),
    ("torch", "torch_version"),
    ("python", "python"),
    ("platform", "platform"),
    ("git commit", "git_commit"),
    ("command", "command"),
)
NOT_RECORDED = "not recorded (this flops JSON carries no environment)"


def _env_value(env: Environment | None, key: str) -> str:
    if env is None:
        return NOT_RECORDED if key == "command" else DASH
    value = getattr(env, key)
    if key == "torch_version":
        value = env.packages.get("torch") or value
    return DASH if value in (None, "") else str(value)


def _packages(env: Environment | None) -> str:
    packages = {} if env is None else env.packages
    return ", ".join(f"{k} {v}" for k, v in packages.items() if k != "torch") or DASH


def environment_section(inputs: Inputs, own: Environment) -> Section:
    """Where every input and this report were produced, side by side."""
    sources: list[tuple[str, Environment | None]] = []
    run_threads: dict[str, str] = {}
    for ablation in inputs.ablations:
        label = f"results `{ablation.name}`"
        sources.append((label, ablation.results.environment))
        threads = sorted(
            {str(r.environment.torch_threads) for r in ablation.records if r.environment}
        )
        if threads and threads != [str(ablation.results.environment.torch_threads)]:
            run_threads[label] = ", ".join(threads)
    seen: set[str] = set()
    for run in inputs.runs:
        env = run.summary.environment
        signature = repr(env.model_dump(exclude={"date", "command"}))
        if signature not in seen:
            seen.add(signature)
            sources.append((f"run `{run.name}`", env))
    for result in inputs.times:
        sources.append((f"`{result.path.name}`", result.results.environment))
    for result in inputs.flops:
        sources.append((f"`{result.path.name}`", result.results.environment))
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
    for label, key in _ENV_FIELDS:
        table.rows.append(TableRow([label, *(_env_value(env, key) for _, env in sources)]))
    table.rows.append(TableRow(["packages", *(_packages(env) for _, env in sources)]))
    if run_threads:
        table.rows.append(
            TableRow(["threads per run", *(run_threads.get(name, DASH) for name, _ in sources)])
        )
    table.data = [
        {
            "source": name,
            **({} if env is None else env.model_dump(exclude={"packages", "schema_version"})),
            **{f"packages.{k}": v for k, v in ({} if env is None else env.packages).items()},
        }
        for name, env in sources
    ]
    section = Section("environment", "Environment")
    section.tables.append(table)
    return section
