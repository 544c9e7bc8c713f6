"""``run.project_time``: after a grid's runs, the projected whole-run wall-clock of every
row (``bench.projection.recipes``), written to ``whole-run.json`` next to results.json, which
``diffbench report`` shows beside the runs' measured wall-clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from bench.ablate.grid import Grid
from bench.report.projection_sections import PROJECTION_FILE

if TYPE_CHECKING:
    from bench.projection.recipes import ProjectionRequest


def projection_request(grid: Grid) -> ProjectionRequest:
    """The whole-run projection ``run.project_time`` asks for, one recipe per row."""
    from bench.projection.recipes import grid_projection_request

    spec = grid.run.project_time
    assert spec is not None
    rows = [(row.name, row.config) for row in grid.rows]
    return grid_projection_request(spec, rows, grid.base.budget_samples, grid.baseline.name)


def project_grid(grid: Grid, out: Path) -> Path:
    """Run the projection unless ``whole-run.json`` already holds this very request (and
    history file); with ``history`` set, its seconds' intervals come from the machine's
    history (``bench.projection.history``) and its rows join that history."""
    from bench.projection.history import project_with_history
    from bench.projection.measure import project_whole_run
    from diffmavil.atomic import atomic_write_json
    from diffmavil.training.config import config_hash

    request = projection_request(grid)
    history = grid.run.project_time.history if grid.run.project_time else None
    identity = request.model_dump(mode="json")
    if history is not None:  # absent otherwise: earlier grids keep their request hash
        identity["history"] = history
    key = config_hash(identity)
    path = out / PROJECTION_FILE
    if path.exists():
        try:
            if json.loads(path.read_text()).get("request_hash") == key:
                return path
        except (json.JSONDecodeError, OSError):
            pass
    result = project_whole_run(request)
    if history is not None:
        result = project_with_history(result, Path(history))
    atomic_write_json(path, result.stored(request_hash=key).model_dump(mode="json"))
    return path
