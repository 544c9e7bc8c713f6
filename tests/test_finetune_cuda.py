"""Fine-tuning's and the probe's CUDA path, shown on the CPU where a CPU can show it: the
epoch's losses read once per epoch (not per step), SpecAugment's masks built on the batch's
device, bf16 autocast on CUDA as an option of the fine-tune, the probe's batch order on the
features' device. CPU results are unchanged (the CPU random streams are the same).

Tests marked ``gpu`` check what only CUDA shows; they are skipped without a CUDA device.
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from diffmavil import make_config
from diffmavil.training import finetune
from diffmavil.training.config import FinetuneConfig

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _classifier_inputs():
    from diffmavil import DiffMAViL
    from diffmavil.data import build_dataset

    model_config = make_config("tiny", "cross-attn")
    torch.manual_seed(0)
    backbone = DiffMAViL(model_config)
    dataset = build_dataset("synthetic:classes=4,size=24,eval_size=8", model_config, "val")
    return backbone, dataset


def test_a_finetune_reads_its_losses_once_per_epoch(monkeypatch):
    """``float(loss)`` per step waited for the GPU at every step; the epoch's losses are now
    read together (one ``tolist``), their mean the same to the last bit."""
    reads: Counter[str] = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in ("item", "tolist", "__float__")}

    def counted(name):
        def read(self, *args):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("diffmavil"):
                reads[caller] += 1
            return originals[name](self, *args)

        return read

    for name in originals:
        monkeypatch.setattr(torch.Tensor, name, counted(name))
    backbone, dataset = _classifier_inputs()
    config = FinetuneConfig(
        mode="finetune", epochs=2, batch_size=4, max_train_items=16, specaugment_time=4
    )
    rows = []
    finetune.train_classifier(backbone, dataset, config, on_epoch=rows.append)
    assert len(rows) == 2
    assert reads["diffmavil.training.finetune"] == 2  # one per epoch (was one per batch: 4)


class _Outputs(TorchDispatchMode):
    """Records each op's name, output device and size, and the devices of an index op's
    tensor and its indices."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: list[tuple[str, torch.device, int]] = []
        self.indexing: list[tuple[torch.device, torch.device]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.outputs.append((str(func), out.device, out.numel()))
        if func is torch.ops.aten.index.Tensor:
            self.indexing += [(args[0].device, i.device) for i in args[1] if i is not None]
        return out


def test_spec_augment_builds_its_mask_on_the_batchs_device():
    """The [B, T, F] mask was built on the CPU and copied to the device every step; now
    only the B band widths and starts are drawn on the CPU (from the CPU generator: the
    same bands on every device, the CPU stream unchanged). A meta batch stands for CUDA."""
    batch = 3
    audio = torch.randn(batch, 32, 16, device="meta")
    with _Outputs() as ops:
        out = finetune.spec_augment(audio, 4, 6, torch.Generator().manual_seed(0))
    assert out.device.type == "meta" and out.shape == audio.shape
    on_cpu = [(name, size) for name, device, size in ops.outputs if device.type == "cpu"]
    assert on_cpu and all(size <= batch for _, size in on_cpu), on_cpu


def test_probe_batches_index_the_features_on_their_device():
    """The probe's (and head-first stage's) batch order, drawn from the CPU generator,
    indexed device features with a CPU index (a copy per batch); now it moves once per
    epoch. Meta features stand for CUDA."""
    from torch import nn

    from diffmavil.training.probe import fit_head

    features = torch.randn(40, 8, device="meta")
    labels = torch.zeros(40, dtype=torch.long, device="meta")
    head = nn.Linear(8, 3, device="meta")
    with _Outputs() as ops:
        fit_head(head, features, labels, False, FinetuneConfig(batch_size=16), 1e-2, 2,
                 torch.Generator().manual_seed(0))  # fmt: skip
    assert len(ops.indexing) == 2 * 2 * 3  # features and labels, 3 batches, 2 epochs
    assert all(index.type == "meta" for _, index in ops.indexing), ops.indexing


# ------------------------------------------------------------- CUDA only
@pytest.mark.gpu
@gpu
def test_bf16_finetune_on_cuda_runs_the_encoders_in_bf16():
    backbone, dataset = _classifier_inputs()
    backbone = backbone.cuda()
    config = FinetuneConfig(mode="finetune", epochs=1, batch_size=4, max_train_items=8)
    dtypes = set()
    linear = next(m for m in backbone.audio_encoder.modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(lambda module, inputs, output: dtypes.add(output.dtype))
    try:
        model, _ = finetune.train_classifier(backbone, dataset, config, "cuda", dtype="bf16")
    finally:
        hook.remove()
    assert torch.bfloat16 in dtypes
    logits, _ = finetune.logits_and_labels(model, dataset, config, "cuda", 8, dtype="bf16")
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_bf16_finetune_needs_cuda():
    backbone, dataset = _classifier_inputs()
    config = FinetuneConfig(mode="finetune", epochs=1, batch_size=4, max_train_items=8)
    with pytest.raises(ValueError, match="bf16"):
        finetune.train_classifier(backbone, dataset, config, "cpu", dtype="bf16")


@pytest.mark.gpu
@gpu
def test_probe_head_on_cuda_features_trains_like_on_cpu():
    """The batch order comes from the CPU generator on every device (the CPU stream
    unchanged) and indexes the features on their own device."""
    from torch import nn

    from diffmavil.training.probe import fit_head

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(40, 8, generator=generator)
    labels = torch.arange(40) % 3
    config = FinetuneConfig(batch_size=16)
    heads = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        head = nn.Linear(8, 3).to(device)
        fit_head(head, features.to(device), labels.to(device), False, config, 1e-2, 3,
                 torch.Generator().manual_seed(1))  # fmt: skip
        heads[device] = head.weight.detach().cpu()
    torch.testing.assert_close(heads["cuda"], heads["cpu"], rtol=1e-4, atol=1e-4)
