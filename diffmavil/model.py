"""DiffMAViL: masked audio-video autoencoding with diffused masked patches.

Read top to bottom: ``patchify`` -> ``random_masking`` -> ``forward_encoders`` (modality
encoders on visible patches, then the fusion encoder) -> ``forward_decoders`` (noised
masked patches or [MASK] tokens in, predictions at masked positions out) ->
``forward_loss`` (masked MSE per modality + inter-modal InfoNCE).

Submodules are named after the components that FLOPs, parameters and time are attributed
to: ``audio_encoder``, ``video_encoder``, ``fusion``, ``audio_decoder``,
``video_decoder``; the rest (noise schedule, contrastive projections) is ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from diffmavil import rng
from diffmavil.config import (
    DEFAULT_MASK_RATIO,
    MODALITIES,
    ModelConfig,
    TransformerSize,
    parse_mask_ratio,
)
from diffmavil.decoders import build_decoder
from diffmavil.diffusion import NoiseSchedule
from diffmavil.encoders import FusionEncoder, ModalityEncoder, mean_pool_patches
from diffmavil.losses import FeatureGather, info_nce, masked_mse, normalize_patches
from diffmavil.masking import MaskIndices, gather_tokens, random_masking
from diffmavil.patching import patchify_audio, patchify_video

_MASK_STREAM = {"audio": rng.STREAM_AUDIO_MASK, "video": rng.STREAM_VIDEO_MASK}
_VIEW2_STREAM = {"audio": rng.STREAM_AUDIO_MASK_VIEW2, "video": rng.STREAM_VIDEO_MASK_VIEW2}
_TIME_STREAM = {"audio": rng.STREAM_AUDIO_TIMESTEP, "video": rng.STREAM_VIDEO_TIMESTEP}
_NOISE_STREAM = {"audio": rng.STREAM_AUDIO_NOISE, "video": rng.STREAM_VIDEO_NOISE}


@dataclass
class ModalityOutput:
    """One modality's pass. mask: kept/masked indices; prediction, target [B, M, P];
    decoder_input [B, M, P] the noised masked patches (None without diffusion);
    timesteps [B] (None without diffusion); encoded [B, 1 + K, D] encoder output."""

    mask: MaskIndices
    prediction: torch.Tensor
    target: torch.Tensor
    encoded: torch.Tensor
    decoder_input: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None


@dataclass
class DiffMAViLOutput:
    """loss: scalar total; losses: each weighted term's unweighted value (scalars)."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    audio: ModalityOutput
    video: ModalityOutput
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class EncodedFeatures:
    """Pooled features of the unmasked encode path, each [B, D]: mean over the patch
    tokens of the modality encoders (audio, video) and of the fused tokens (joint,
    audio_fused, video_fused)."""

    audio: torch.Tensor | None
    video: torch.Tensor | None
    audio_fused: torch.Tensor | None
    video_fused: torch.Tensor | None
    joint: torch.Tensor


class DiffMAViL(nn.Module):
    """The full model of one ``ModelConfig``; builds only the modules its variant uses."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        enc = config.encoder
        self.audio_encoder = ModalityEncoder(config.audio.patch_dim, config.audio.grid, enc)
        self.video_encoder = ModalityEncoder(config.video.patch_dim, config.video.grid, enc)
        fusion_size = TransformerSize(
            dim=enc.dim, depth=config.fusion_depth, heads=enc.heads, mlp_ratio=enc.mlp_ratio
        )
        self.fusion = FusionEncoder(fusion_size)
        self.audio_decoder = build_decoder(
            enc.dim, config.audio.patch_dim, config.audio.grid, config.audio_decoder
        )
        self.video_decoder = build_decoder(
            enc.dim, config.video.patch_dim, config.video.grid, config.video_decoder
        )
        self.noise_schedule = NoiseSchedule(config.diffusion) if config.uses_diffusion else None
        loss = config.loss
        if loss.contrastive_weight > 0 or loss.intra_contrastive_weight > 0:
            self.audio_projection = nn.Linear(enc.dim, loss.contrastive_dim)
            self.video_projection = nn.Linear(enc.dim, loss.contrastive_dim)
        else:
            self.audio_projection = None
            self.video_projection = None
        self.reset_parameters()

    # ----------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """MAE initialisation: xavier-uniform linears, zero biases, N(0, 0.02) tokens."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for name, parameter in self.named_parameters():
            if name.endswith("cls_token") or name.endswith("mask_token"):
                nn.init.normal_(parameter, std=0.02)

    def encoder(self, modality: str) -> ModalityEncoder:
        return self.audio_encoder if modality == "audio" else self.video_encoder

    def decoder(self, modality: str) -> nn.Module:
        return self.audio_decoder if modality == "audio" else self.video_decoder

    # ----------------------------------------------------------------------------------
    def patchify(self, audio: torch.Tensor, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """audio [B, T, F], video [B, C, T, H, W] -> {modality: [B, L, P]}."""
        return {
            "audio": patchify_audio(audio, self.config.audio),
            "video": patchify_video(video, self.config.video),
        }

    def random_masking(
        self,
        mask_ratio: tuple[float, float],
        sample_ids: torch.Tensor,
        seed: int,
        view: int = 1,
    ) -> dict[str, MaskIndices]:
        """Per-modality masks keyed by (seed, sample id); ``view=2`` draws a second view."""
        streams = _MASK_STREAM if view == 1 else _VIEW2_STREAM
        return {
            m: random_masking(
                self.config.num_patches(m), r, sample_ids, seed=seed, stream=streams[m]
            )
            for m, r in zip(MODALITIES, mask_ratio, strict=True)
        }

    def forward_encoders(
        self, patches: dict[str, torch.Tensor], masks: dict[str, MaskIndices]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """-> (encoder outputs, fused outputs), each {modality: [B, 1 + K_m, D]}."""
        encoded = self.encode_visible(patches, masks)
        fused_audio, fused_video = self.fusion(encoded["audio"], encoded["video"])
        return encoded, {"audio": fused_audio, "video": fused_video}

    def encode_visible(
        self, patches: dict[str, torch.Tensor], masks: dict[str, MaskIndices]
    ) -> dict[str, torch.Tensor]:
        """Each modality's encoder over its visible patches -> {modality: [B, 1 + K_m, D]}."""
        return {
            m: self.encoder(m)(gather_tokens(patches[m], masks[m].keep), masks[m].keep)
            for m in MODALITIES
        }

    def noise_masked_patches(
        self, targets: torch.Tensor, modality: str, sample_ids: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """targets x_0 [B, M, P] -> (x_t [B, M, P], t [B]) with t ~ U{1..T} per sample."""
        assert self.noise_schedule is not None
        t = rng.integers(seed, sample_ids, _TIME_STREAM[modality], 1, self.noise_schedule.timesteps)
        noise = rng.normal(seed, sample_ids, _NOISE_STREAM[modality], tuple(targets.shape[1:]))
        return self.noise_schedule.q_sample(targets, t, noise.to(targets.dtype)), t

    def forward_decoder(
        self,
        modality: str,
        fused: torch.Tensor,
        mask: MaskIndices,
        target: torch.Tensor,
        sample_ids: torch.Tensor,
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """-> (prediction [B, M, P], x_t [B, M, P] or None, t [B] or None)."""
        if self.config.decoder(modality).diffusion:
            noisy, t = self.noise_masked_patches(target, modality, sample_ids, seed)
        else:
            noisy, t = None, None
        return self.decoder(modality)(fused, mask, noisy, t), noisy, t

    def contrastive_features(self, encoded: torch.Tensor, modality: str) -> torch.Tensor:
        """Encoder tokens [B, 1 + K, D] -> projected pooled features [B, C]."""
        projection = self.audio_projection if modality == "audio" else self.video_projection
        assert projection is not None
        return projection(mean_pool_patches(encoded))

    def contrastive_loss(
        self,
        audio: torch.Tensor,
        video: torch.Tensor,
        mask_ratio: tuple[float, float] | str = DEFAULT_MASK_RATIO,
        sample_ids: torch.Tensor | None = None,
        seed: int = 0,
    ) -> torch.Tensor:
        """Inter-modal InfoNCE of the encoders alone (no fusion, no decoders): scalar.

        audio [B, T, F], video [B, C, T, H, W]; row i of each is a pair. The same masks and
        loss as ``forward``'s ``contrastive`` term, at a fraction of its cost: for training
        or evaluating audio-video matching (e.g. true vs shuffled pairs).
        """
        if self.audio_projection is None or self.video_projection is None:
            raise ValueError(
                "contrastive_loss needs the contrastive projections: "
                "set loss.contrastive_weight or loss.intra_contrastive_weight > 0"
            )
        ratios = parse_mask_ratio(mask_ratio)
        if sample_ids is None:
            sample_ids = torch.arange(audio.shape[0], device=audio.device)
        patches = self.patchify(audio, video)
        encoded = self.encode_visible(patches, self.random_masking(ratios, sample_ids, seed))
        features = {m: self.contrastive_features(encoded[m], m) for m in MODALITIES}
        return info_nce(features["audio"], features["video"], self.config.loss.temperature)

    # ----------------------------------------------------------------------------------
    def forward(
        self,
        audio: torch.Tensor,
        video: torch.Tensor,
        mask_ratio: tuple[float, float] | str = DEFAULT_MASK_RATIO,
        sample_ids: torch.Tensor | None = None,
        seed: int = 0,
        gather: FeatureGather | None = None,
        rank: int = 0,
    ) -> DiffMAViLOutput:
        """audio [B, T, F] fbank, video [B, C, T, H, W]; mask_ratio (audio, video).

        sample_ids [B] int64: global ids of the samples (position in the stream of samples
        seen); masks, timesteps and noise are drawn from (seed, sample id). Defaults to
        0..B-1. ``gather``/``rank``: cross-rank feature gathering for InfoNCE under DDP.
        """
        ratios = parse_mask_ratio(mask_ratio)
        if sample_ids is None:
            sample_ids = torch.arange(audio.shape[0], device=audio.device)
        patches = self.patchify(audio, video)
        masks = self.random_masking(ratios, sample_ids, seed)
        encoded, fused = self.forward_encoders(patches, masks)

        outputs: dict[str, ModalityOutput] = {}
        for m in MODALITIES:
            target = gather_tokens(patches[m], masks[m].masked)
            if self.config.loss.norm_pix_loss:
                target = normalize_patches(target)
            prediction, noisy, t = self.forward_decoder(
                m, fused[m], masks[m], target, sample_ids, seed
            )
            outputs[m] = ModalityOutput(masks[m], prediction, target, encoded[m], noisy, t)
        return self.forward_loss(outputs, patches, ratios, sample_ids, seed, gather, rank)

    def forward_loss(
        self,
        outputs: dict[str, ModalityOutput],
        patches: dict[str, torch.Tensor],
        ratios: tuple[float, float],
        sample_ids: torch.Tensor,
        seed: int,
        gather: FeatureGather | None,
        rank: int,
    ) -> DiffMAViLOutput:
        """Weighted sum of masked MSE per modality, inter- and intra-modal InfoNCE."""
        spec = self.config.loss
        losses = {
            f"{m}_recon": masked_mse(outputs[m].prediction, outputs[m].target) for m in MODALITIES
        }
        total = (
            spec.audio_weight * losses["audio_recon"] + spec.video_weight * losses["video_recon"]
        )
        if spec.contrastive_weight > 0:
            features = {m: self.contrastive_features(outputs[m].encoded, m) for m in MODALITIES}
            losses["contrastive"] = info_nce(
                features["audio"], features["video"], spec.temperature, gather, rank
            )
            total = total + spec.contrastive_weight * losses["contrastive"]
        if spec.intra_contrastive_weight > 0:
            view2 = self.random_masking(ratios, sample_ids, seed, view=2)
            for m in MODALITIES:
                second = self.encoder(m)(gather_tokens(patches[m], view2[m].keep), view2[m].keep)
                losses[f"{m}_intra_contrastive"] = info_nce(
                    self.contrastive_features(outputs[m].encoded, m),
                    self.contrastive_features(second, m),
                    spec.temperature,
                    gather,
                    rank,
                )
                total = total + spec.intra_contrastive_weight * losses[f"{m}_intra_contrastive"]
        return DiffMAViLOutput(total, losses, outputs["audio"], outputs["video"])

    # ----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self, audio: torch.Tensor | None = None, video: torch.Tensor | None = None
    ) -> EncodedFeatures:
        """Unmasked features for probing (no grad); see ``encode_with_grad`` for fine-tuning."""
        return self.encode_with_grad(audio, video)

    def encode_with_grad(
        self,
        audio: torch.Tensor | None = None,
        video: torch.Tensor | None = None,
        keep_fraction: float = 1.0,
    ) -> EncodedFeatures:
        """audio [B, T, F] and/or video [B, C, T, H, W] -> pooled features. With one
        modality, the fusion encoder runs over that modality alone. ``keep_fraction`` < 1
        (fine-tuning's patch dropout): each clip's encoder sees a random subset of
        ``round(keep_fraction * L)`` of its L patches (torch's global generator), so a step
        costs about that fraction; 1 (the default): every patch."""
        if audio is None and video is None:
            raise ValueError("encode needs audio, video or both")
        if not 0 < keep_fraction <= 1:
            raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
        patches: dict[str, torch.Tensor] = {}
        if audio is not None:
            patches["audio"] = patchify_audio(audio, self.config.audio)
        if video is not None:
            patches["video"] = patchify_video(video, self.config.video)
        tokens: dict[str, torch.Tensor] = {}
        for m, grid in patches.items():
            if keep_fraction == 1:
                tokens[m] = self.encoder(m).embed_all(grid)
                continue
            batch, length = grid.shape[:2]
            kept = max(1, round(keep_fraction * length))
            keep = torch.rand(batch, length, device=grid.device).argsort(dim=1)[:, :kept]
            keep = keep.sort(dim=1).values
            tokens[m] = self.encoder(m)(gather_tokens(grid, keep), keep)
        fused = dict(zip(tokens, self.fusion(*tokens.values()), strict=True))
        joint = torch.cat([t[:, 1:] for t in fused.values()], dim=1).mean(dim=1)
        pooled = {m: mean_pool_patches(t) for m, t in tokens.items()}
        pooled_fused = {m: mean_pool_patches(t) for m, t in fused.items()}
        return EncodedFeatures(
            audio=pooled.get("audio"),
            video=pooled.get("video"),
            audio_fused=pooled_fused.get("audio"),
            video_fused=pooled_fused.get("video"),
            joint=joint,
        )

    @property
    def feature_dim(self) -> int:
        return self.config.encoder.dim


def component_of(parameter_name: str) -> str:
    """The component a parameter (or module) name belongs to: one of COMPONENTS."""
    head = parameter_name.split(".", 1)[0]
    if head in ("audio_encoder", "video_encoder", "fusion", "audio_decoder", "video_decoder"):
        return head
    return "other"


def count_parameters_by_component(model: nn.Module) -> dict[str, int]:
    """{component: trainable parameters}; components sum to the whole model."""
    from diffmavil.config import COMPONENTS

    counts = dict.fromkeys(COMPONENTS, 0)
    for name, parameter in model.named_parameters():
        counts[component_of(name)] += parameter.numel()
    return counts
