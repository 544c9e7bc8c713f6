"""Paired comparison of fine-tune defaults: 100 epochs on every training item (the old
default) vs the default chosen for the data size with early stopping (the new one).

Same fine-tune seed (init, order, validation split) in both arms; ~500 training clips
(synthetic "val" split) and 2,000 evaluation clips (synthetic "test" split) at tiny, random
init. Usage: python reports/compile/finetune_paired.py SEEDS OUT.jsonl [THREADS]
(e.g. ``0,1,2 runs/finetune-paired.jsonl 1``); one JSON line per (seed, arm).
"""

from __future__ import annotations

import json
import sys
import time

import torch

from diffmavil.config import make_config
from diffmavil.data.synthetic import SyntheticAVDataset, SyntheticOptions
from diffmavil.training.config import FinetuneConfig
from diffmavil.training.finetune import evaluate

TRAIN_CLIPS, EVAL_CLIPS = 500, 2000


def main() -> None:
    seeds = [int(s) for s in sys.argv[1].split(",")]
    out = sys.argv[2]
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    config = make_config("tiny", "cross-attn")
    for seed in seeds:
        train = SyntheticAVDataset(
            config, "val", options=SyntheticOptions(eval_size=TRAIN_CLIPS), seed=seed,
            cache="memory",
        )  # fmt: skip
        test = SyntheticAVDataset(
            config, "test", options=SyntheticOptions(eval_size=EVAL_CLIPS), seed=seed
        )
        arms = {
            "new": FinetuneConfig(mode="finetune", seed=seed),
            "old": FinetuneConfig(mode="finetune", seed=seed, epochs=100, patience=None),
        }
        for arm, finetune in arms.items():
            start = time.perf_counter()
            epochs: list[dict] = []
            result = evaluate(
                finetune, "random", config, datasets=(train, test), on_epoch=epochs.append
            )
            row = {"seed": seed, "arm": arm, "seconds": time.perf_counter() - start,
                   "threads": torch.get_num_threads(), **result, "epoch_log": epochs}  # fmt: skip
            with open(out, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(seed, arm, round(row["seconds"], 1), row["accuracy"], flush=True)


if __name__ == "__main__":
    main()
