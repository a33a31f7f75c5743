"""The forward pass on quantized files (issue 6, exact kernel path): a fixture wide enough for
256-value K-quant blocks, quantized by our quantizer to each mix, through the engine and through
transformers run on the weights gguf-py dequantizes from the same file."""

from __future__ import annotations

from collections import Counter

import gguf
import pytest

import diffgemma
from fixtures.models import TinySpec
from forward_support import engine_run, hf_model, hf_run, kv_err, make_scenario, max_err

LOGIT_TOL = 1e-4  # testing.md: logits within 1e-4 of transformers on the dequantized weights

WIDE = TinySpec("tiny_wide", hidden_size=256, intermediate_size=192, moe_intermediate_size=64, seed=3)


@pytest.fixture(scope="module")
def wide_f32(tiny_checkpoint, tmp_path_factory):
    from diffgemma.convert import ConvertOptions, convert

    ckpt = tiny_checkpoint(WIDE)
    path = tmp_path_factory.mktemp("wide") / "wide-f32.gguf"
    convert(ConvertOptions(ckpt, path, outtype="f32", name="tiny_wide", progress=False))
    return ckpt, path


@pytest.mark.parametrize("mix,expect_types", [
    ("Q8_0", {"Q8_0"}),
    ("Q6_K", {"Q6_K"}),
    ("Q5_K_M", {"Q5_K", "Q6_K"}),
    ("Q4_K_M", {"Q4_K", "Q6_K"}),
    ("Q5_0", {"Q5_0"}),
    ("NVFP4", {"NVFP4"}),
])
def test_quantized_file_matches_transformers_on_dequantized_weights(wide_f32, tmp_path, mix, expect_types, request):
    ckpt, f32 = wide_f32
    path = tmp_path / f"wide-{mix}.gguf"
    diffgemma.quantize(f32, path, mix)
    types = Counter(t.tensor_type.name for t in gguf.GGUFReader(path).tensors)
    assert expect_types <= set(types), types  # the file really holds the mix's formats
    sc = make_scenario(WIDE.vocab_size, WIDE.sliding_window, WIDE.canvas_length, seed=WIDE.seed)
    ours = engine_run(path, sc)
    ref = hf_run(hf_model(ckpt, "float32", gguf_path=path), sc)
    orig = hf_run(hf_model(ckpt, "float32"), sc)
    e, e_sc = max_err(ours.logits, ref.logits), max_err(ours.logits_sc, ref.logits_sc)
    print(f"[{mix}] types={dict(types)} logits_vs_hf32_dequant={e:.2e} sc={e_sc:.2e} "
          f"kv={kv_err(ours, ref):.2e} logits_vs_original_weights={max_err(ours.logits, orig.logits):.2e}")
    assert max_err(ref.logits, orig.logits) > 1e-6  # the weights really are rounded
    assert e <= LOGIT_TOL and e_sc <= LOGIT_TOL
