"""diffmavil: the DiffMAViL model library (no dependency on the ``bench`` harness).

Names are imported lazily, so that ``import diffmavil.config`` (and the CLI's ``--help``)
does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "COMPONENTS": "diffmavil.config",
    "PRESETS": "diffmavil.config",
    "VARIANTS": "diffmavil.config",
    "ConfigError": "diffmavil.config",
    "ModelConfig": "diffmavil.config",
    "make_config": "diffmavil.config",
    "parse_mask_ratio": "diffmavil.config",
    "DiffMAViL": "diffmavil.model",
    "DiffMAViLOutput": "diffmavil.model",
    "EncodedFeatures": "diffmavil.model",
    "count_parameters_by_component": "diffmavil.model",
    "keep_count": "diffmavil.tokens",
    "masked_count": "diffmavil.tokens",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'diffmavil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
