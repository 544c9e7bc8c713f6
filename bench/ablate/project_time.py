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
    """Run the projection unless ``whole-run.json`` already holds this very request."""
    from bench.projection.measure import project_whole_run
    from diffmavil.atomic import atomic_write_json
    from diffmavil.training.config import config_hash

    request = projection_request(grid)
    key = config_hash(request.model_dump(mode="json"))
    path = out / PROJECTION_FILE
    if path.exists():
        try:
            if json.loads(path.read_text()).get("request_hash") == key:
                return path
        except (json.JSONDecodeError, OSError):
            pass
    result = project_whole_run(request)
    atomic_write_json(path, result.stored(request_hash=key).model_dump(mode="json"))
    return path
