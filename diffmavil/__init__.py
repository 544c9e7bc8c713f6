"""diffmavil: the DiffMAViL model library (no dependency on the ``bench`` harness)."""

from diffmavil.config import (
    COMPONENTS,
    PRESETS,
    VARIANTS,
    ConfigError,
    ModelConfig,
    make_config,
    parse_mask_ratio,
)
from diffmavil.model import (
    DiffMAViL,
    DiffMAViLOutput,
    EncodedFeatures,
    count_parameters_by_component,
)
from diffmavil.tokens import keep_count, masked_count

__version__ = "0.1.0"

__all__ = [
    "COMPONENTS",
    "PRESETS",
    "VARIANTS",
    "ConfigError",
    "DiffMAViL",
    "DiffMAViLOutput",
    "EncodedFeatures",
    "ModelConfig",
    "count_parameters_by_component",
    "keep_count",
    "make_config",
    "masked_count",
    "parse_mask_ratio",
]
