"""The converter's plan for the real google/diffusiongemma-26B-A4B-it shapes.

No real weights can be downloaded here, so the checkpoint is a *sparse* 50 GB safetensors file:
a valid header with every text tensor at its real shape (model-spec §8.1) and holes for data.
Planning the GGUF reads only the header, so the metadata and tensor table can be compared with
the dump of the unsloth Q8_0 file quoted in gguf-layout.md (§1.1 values, §2.1 names/shapes/types,
§4.2 type counts, §2.1 data size) without touching 50 GB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("tokenizers")

from gguf import GGMLQuantizationType as QT  # noqa: E402

from diffgemma.convert.hf_config import load_hparams  # noqa: E402
from diffgemma.convert.hf_vocab import load_vocab  # noqa: E402
from diffgemma.convert.layout import plan_tensors  # noqa: E402
from diffgemma.convert.metadata import build_metadata  # noqa: E402
from diffgemma.convert.safetensors_reader import Checkpoint  # noqa: E402
from fixtures.expected_layout import ANY, expected_kvs, expected_tensors, expected_type  # noqa: E402
from fixtures.models import FULL, SLIDING, TinySpec  # noqa: E402

REAL = TinySpec(
    "real",
    vocab_size=262144,
    hidden_size=2816,
    intermediate_size=2112,
    moe_intermediate_size=704,
    num_experts=128,
    top_k_experts=8,
    layer_types=((SLIDING,) * 5 + (FULL,)) * 5,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=256,
    num_global_key_value_heads=2,
    global_head_dim=512,
    sliding_window=1024,
    canvas_length=256,
    max_position_embeddings=262144,
)

# The released config.json (model-spec §1.1, gguf-layout.md §1.3): the *released* spelling, with
# global_head_dim / num_global_key_value_heads, and no final_logit_softcapping key.
REAL_CONFIG = {
    "architectures": ["DiffusionGemmaForBlockDiffusion"],
    "model_type": "diffusion_gemma",
    "canvas_length": 256,
    "eos_token_id": [1, 106],
    "tie_word_embeddings": True,
    "text_config": {
        "model_type": "diffusion_gemma_text",
        "vocab_size": 262144,
        "hidden_size": 2816,
        "intermediate_size": 2112,
        "moe_intermediate_size": 704,
        "num_experts": 128,
        "top_k_experts": 8,
        "num_hidden_layers": 30,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 256,
        "global_head_dim": 512,
        "num_global_key_value_heads": 2,
        "layer_types": list(REAL.layer_types),
        "sliding_window": 1024,
        "max_position_embeddings": 262144,
        "rms_norm_eps": 1e-6,
        "final_logit_softcapping": 30.0,
        "rope_parameters": {
            "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1e6},
            "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
        },
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 1,
    },
}


def hf_shapes(spec: TinySpec) -> dict[str, tuple[int, ...]]:
    """Every HF tensor of the checkpoint (model-spec §8.1), as numpy shapes; plus two vision tensors."""
    shapes = {}
    for _, ne, _, src in expected_tensors(spec, spec.vocab_size):
        if src is not None:
            shapes[src] = tuple(reversed(ne))
    shapes["model.encoder.embed_vision.embedding_projection.weight"] = (spec.hidden_size, 1152)
    shapes["model.encoder.vision_tower.patch_embedder.input_proj.weight"] = (1152, 768)
    return shapes


def write_sparse_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    header, offset = {}, 0
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)  # a hole, not 50 GB of disk


def require_sparse_files(directory: Path) -> None:
    probe = directory / "probe"
    with open(probe, "wb") as f:
        f.truncate(1 << 30)
    allocated = os.stat(probe).st_blocks * 512
    probe.unlink()
    if allocated > 1 << 20:
        pytest.skip("the temporary directory's filesystem does not support sparse files")


@pytest.fixture(scope="module")
def real_plan(tmp_path_factory):
    from fixtures.tokenizer import write_gemma4_tokenizer

    model_dir = tmp_path_factory.mktemp("real")
    require_sparse_files(model_dir)
    (model_dir / "config.json").write_text(json.dumps(REAL_CONFIG))
    write_gemma4_tokenizer(model_dir, vocab_size=REAL.vocab_size)
    write_sparse_safetensors(model_dir / "model.safetensors", hf_shapes(REAL))

    hp = load_hparams(model_dir)
    vocab = load_vocab(model_dir)
    with Checkpoint(model_dir) as checkpoint:
        tensors = plan_tensors(hp, len(vocab.tokens), checkpoint, "q8_0")
    kvs = build_metadata(hp, vocab, tensors, "q8_0", "diffusiongemma-26B-A4B-it")
    return kvs, tensors


def test_real_metadata_matches_the_unsloth_q8_0_dump(real_plan):
    kvs, _ = real_plan
    got = {kv.key: kv for kv in kvs}
    expected = expected_kvs(REAL, "q8_0", "diffusiongemma-26B-A4B-it", REAL.vocab_size)
    assert list(got) == [key for key, _, _ in expected]
    for key, types, value in expected:
        kv = got[key]
        assert [kv.type] + ([kv.sub_type] if kv.sub_type is not None else []) == types, key
        if value is not ANY:
            if kv.type == gguf.GGUFValueType.FLOAT32:
                assert np.float32(kv.value) == np.float32(value), key
            else:
                assert kv.value == value, key
    # Literal values of gguf-layout.md §1.1, not derived from the spec.
    a = "diffusion-gemma."
    assert got["general.size_label"].value == "128x2.6B"
    assert got[a + "attention.head_count_kv"].value == [8, 8, 8, 8, 8, 2] * 5
    assert got[a + "attention.sliding_window_pattern"].value == [True] * 5 + [False] + ([True] * 5 + [False]) * 4
    assert (got[a + "attention.key_length"].value, got[a + "attention.key_length_swa"].value) == (512, 256)
    assert (got[a + "rope.dimension_count"].value, got[a + "rope.dimension_count_swa"].value) == (512, 256)
    assert got[a + "expert_feed_forward_length"].value == 704
    assert got["diffusion.canvas_length"].value == 256
    assert got["general.file_type"].value == 7
    assert len(got["tokenizer.ggml.tokens"].value) == 262144


def test_real_tensor_table_matches_the_unsloth_q8_0_dump(real_plan):
    _, tensors = real_plan
    expected = expected_tensors(REAL, REAL.vocab_size)
    assert len(tensors) == 692 == 7 + 25 * 23 + 5 * 22
    assert [t.name for t in tensors] == [e[0] for e in expected]
    for t, (name, ne, kind, _) in zip(tensors, expected):
        assert tuple(reversed(t.shape)) == ne, name
        assert t.qtype == expected_type(kind, ne, "q8_0"), name
    types = [t.qtype for t in tensors]
    assert (types.count(QT.F32), types.count(QT.Q8_0)) == (423, 269)  # §4.2
    freqs = next(t for t in tensors if t.name == "rope_freqs.weight").generated
    np.testing.assert_array_equal(freqs, np.array([1.0] * 64 + [1e30] * 192, dtype=np.float32))


def test_real_tensor_data_size_matches_the_unsloth_q8_0_file(real_plan):
    """Data offset 0xf17760 and last tensor end 26,878,831,328 (gguf-layout.md §2.1)."""
    _, tensors = real_plan
    pad = lambda n: (n + 31) // 32 * 32  # noqa: E731
    data_end = sum(pad(t.nbytes) for t in tensors[:-1]) + tensors[-1].nbytes
    assert data_end == 26_878_831_328 - 0xF17760
