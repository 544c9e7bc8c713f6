"""Where a profiled step's time goes on CUDA: device (kernel) time, split by kernel name into
matrix multiplies, attention and the rest, covering cuBLAS, CUTLASS, flash,
memory-efficient and cuDNN attention and Triton kernels (names as CUDA profiles show
them). The CPU split (self time of matmul operators) is unchanged."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from bench.timing.profiler import kernel_kind, matmul_split

KERNELS = [
    # cuBLAS / cuBLASLt GEMMs, Ampere and Hopper
    ("ampere_sgemm_128x64_nn", "matmul"),
    ("ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_32x5_tn", "matmul"),
    (
        "sm80_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x32_stage4_warpsize2x2x1_tensor16x8x16_kernel",
        "matmul",
    ),
    (
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
        "matmul",
    ),
    ("nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NNT", "matmul"),
    (
        "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8>(cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8::Params)",
        "matmul",
    ),
    (
        "void splitKreduce_kernel<32, 16, int, float, float, float, float, true, false, false>(cublasSplitKParams<float>, float const*, float const*, float*, float const*, float const*, float const*, float const*, float*, void*, long, float*, int*)",
        "matmul",
    ),
    (
        "void gemmk1_kernel<int, float, 256, 5, false, false, false, false, cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float>, float, 0>(cublasGemmk1Params<int, float, cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float>, float, biasType<float, float>::type>)",
        "matmul",
    ),
    (
        "sm80_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x128x64_stage4_warpsize2x2x1_g1_tensor16x8x16_kernel",
        "matmul",
    ),
    # fused attention: flash, memory-efficient (CUTLASS fmha), cuDNN, flex (Triton)
    (
        "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 64, 4, false, false, cutlass::bfloat16_t, Flash_kernel_traits<64, 128, 64, 4, cutlass::bfloat16_t> >, false, false, false, false, true, true, false, false>(pytorch_flash::Flash_fwd_params)",
        "attention",
    ),
    (
        "void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<64, 128, 128, 8, 2, 4, 2, false, false, cutlass::bfloat16_t, Flash_kernel_traits<64, 128, 128, 8, cutlass::bfloat16_t> >, true, false, false, false, false, false>(pytorch_flash::Flash_bwd_params)",
        "attention",
    ),
    ("flash_fwd_kernel", "attention"),
    (
        "fmha_cutlassF_bf16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::bfloat16_t, cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)",
        "attention",
    ),
    (
        "fmha_cutlassB_bf16_aligned_64x64_k64_sm80(PyTorchMemEffAttention::AttentionBackwardKernel<cutlass::arch::Sm80, cutlass::bfloat16_t, true, false, true, 64, 64, 64, false>::Params)",
        "attention",
    ),
    (
        "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128_4x1x1_kernel0_0",
        "attention",
    ),
    (
        "cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_3_64x128x128_4x1x1_kernel0_0",
        "attention",
    ),
    ("triton_tem_fused_flex_attention_0", "attention"),
    # inductor's matmul templates
    ("triton_tem_fused_mm_0", "matmul"),
    ("triton_tem_fused_addmm_gelu_1", "matmul"),
    ("triton_tem_fused_bmm_2", "matmul"),
    # the rest: elementwise, norms, softmax, reductions, copies, the optimizer
    ("triton_poi_fused_add_mul_0", "other"),
    ("triton_poi_fused__scaled_dot_product_flash_attention_transpose_0", "other"),
    (
        "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, at::detail::Array<char*, 2>, TrivialOffsetCalculator<1, unsigned int>, TrivialOffsetCalculator<1, unsigned int>, at::native::memory::LoadWithCast<1>, at::native::memory::StoreWithCast<1> >(...)",
        "other",
    ),
    ("triton_red_fused_native_layer_norm_1", "other"),
    ("triton_per_fused__softmax_2", "other"),
    (
        "void cudnn::engines_precompiled::nchwToNhwcKernel<float, float, float, false, true, (cudnnKernelDataType_t)2>(cudnn::engines_precompiled::nchw2nhwc_params_t<float>, float const*, float*)",
        "other",
    ),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl(at::TensorIteratorBase&, at::native::GeluType)::{lambda()#2}::operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1}, at::detail::Array<char*, 2> >(int, at::native::GeluCUDAKernelImpl(at::TensorIteratorBase&, at::native::GeluType)::{lambda()#2}::operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1}, at::detail::Array<char*, 2>)",
        "other",
    ),
    (
        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float, false>(int, float, float const*, float const*, float const*, float*, float*, float*)",
        "other",
    ),
    (
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)",
        "other",
    ),
    (
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::(anonymous namespace)::FusedAdamMathFunctor<float, 4, (at::native::ADAM_MODE)1, false> >(...)",
        "other",
    ),
    ("Memcpy HtoD (Pageable -> Device)", "other"),
    ("Memset (Device)", "other"),
]


@pytest.mark.parametrize(("name", "kind"), KERNELS, ids=[n[:40] for n, _ in KERNELS])
def test_kernels_are_classified_by_name(name, kind):
    assert kernel_kind(name) == kind


def _cpu(name: str, start: float, end: float, children=()) -> FunctionEvent:
    event = FunctionEvent(0, name, 1, start, end, use_device="cuda")
    for child in children:
        event.append_cpu_child(child)
        child.cpu_parent = event
    return event


def _kernel(name: str, start: float, end: float) -> FunctionEvent:
    return FunctionEvent(0, name, 7, start, end, device_type=DeviceType.CUDA, use_device="cuda")


def test_on_cuda_the_split_is_kernel_time_by_kind():
    """Launch (CPU) times are short, kernels long; a compiled step's Triton kernels and a
    flash attention launched from no matmul operator still count."""
    addmm = _cpu("aten::addmm", 0, 10)
    phase = _cpu("train_step/forward", 0, 100, [addmm])
    events = [
        phase,
        addmm,
        _kernel("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_kernel", 10, 410),
        _kernel(
            "void pytorch_flash::flash_fwd_kernel<...>(pytorch_flash::Flash_fwd_params)", 410, 610
        ),
        _kernel("triton_tem_fused_mm_0", 610, 710),
        _kernel("triton_poi_fused_add_mul_0", 710, 1010),
        _kernel("gpu_user_annotation_span", 0, 1010),  # a label's span, not a kernel
    ]
    events[-1].is_user_annotation = True
    split = matmul_split(events, steps=2)
    assert split["clock"] == "cuda"
    assert split["step_ms"] == pytest.approx(1.0 / 2)  # 1000 us of kernels over 2 steps
    assert split["matmul_ms"] == pytest.approx(0.7 / 2)  # gemm + flash + Triton template
    assert split["attention_ms"] == pytest.approx(0.2 / 2)
    assert split["other_ms"] == pytest.approx(0.3 / 2)
    assert split["matmul_share"] == pytest.approx(0.7)
    assert split["host_ms"] == pytest.approx(0.1 / 2)  # the launching CPU time, apart


def test_on_a_cpu_the_split_is_operator_self_time():
    mm = _cpu("aten::mm", 10, 40)
    phase = _cpu("train_step/forward", 0, 100, [mm])
    split = matmul_split([phase, mm], steps=1)
    assert split["clock"] == "cpu"
    assert (split["step_ms"], split["matmul_ms"], split["other_ms"]) == (0.1, 0.03, 0.07)
    assert split["matmul_share"] == 0.3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile", [False, True])
def test_a_cuda_profile_splits_kernel_time(tmp_path, compile):
    from bench.timing.profiler import profile_train_step
    from diffmavil import DiffMAViL, make_config
    from diffmavil.inputs import random_inputs

    config = make_config("tiny", "cross-attn")
    model = DiffMAViL(config).cuda()
    audio, video = random_inputs(config, 8, torch.device("cuda"))
    result = profile_train_step(
        model, audio, video, (0.8, 0.9), tmp_path, dtype="bf16", compile=compile, warmup=2
    )
    split = result.time_split
    assert split["clock"] == "cuda" and split["step_ms"] > 0
    assert 0 < split["matmul_share"] < 1 and split["attention_ms"] > 0
    parts = split["matmul_ms"] + split["other_ms"]
    assert parts == pytest.approx(split["step_ms"], abs=0.01)
