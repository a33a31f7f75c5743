"""config.json -> hyperparameters: both spellings of the full-layer geometry (gguf-layout.md §1.3.1),
transformers' defaults for absent fields, and clear errors for what the GGUF cannot express."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffgemma.convert import ConvertError
from diffgemma.convert.hf_config import load_hparams

S, F = "sliding_attention", "full_attention"


def write_config(tmp_path: Path, text: dict, **root) -> Path:
    base_text = {
        "vocab_size": 512, "hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 24,
        "num_experts": 8, "top_k_experts": 2, "num_hidden_layers": 6, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "layer_types": [S] * 5 + [F],
    }
    config = {"architectures": ["DiffusionGemmaForBlockDiffusion"], "text_config": {**base_text, **text}, **root}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_transformers_defaults_for_absent_fields(tmp_path):
    hp = load_hparams(write_config(tmp_path, {}))
    assert hp.canvas_length == 256
    assert hp.final_logit_softcapping == 30.0
    assert hp.head_dim_full == 512 and hp.n_head_kv == (2,) * 6  # no global kv heads: num_key_value_heads
    assert (hp.rope_theta_full, hp.rope_theta_swa, hp.partial_rotary_full) == (1e6, 1e4, 0.25)
    assert (hp.context_length, hp.rms_norm_eps, hp.sliding_window) == (131072, 1e-6, 512)


def test_zero_padded_per_layer_config_keys(tmp_path):
    text = {"num_hidden_layers": 12, "layer_types": ([S] * 5 + [F]) * 2,
            "per_layer_config": {"05": {"head_dim": 32, "num_key_value_heads": 1},
                                 "11": {"head_dim": 32, "num_key_value_heads": 1}}}
    hp = load_hparams(write_config(tmp_path, text))
    assert hp.n_head_kv == (2, 2, 2, 2, 2, 1) * 2 and hp.head_dim_full == 32


def test_per_layer_config_wins_over_global_fields(tmp_path):
    text = {"global_head_dim": 64, "num_global_key_value_heads": 4, "per_layer_config": {"5": {"head_dim": 32}}}
    hp = load_hparams(write_config(tmp_path, text))
    assert (hp.head_dim_full, hp.n_head_kv[5]) == (32, 2)


def test_attention_k_eq_v_false_drops_the_global_kv_override(tmp_path):
    text = {"global_head_dim": 32, "num_global_key_value_heads": 1, "attention_k_eq_v": False}
    hp = load_hparams(write_config(tmp_path, text))
    assert hp.n_head_kv[5] == 2


def test_last_layer_is_forced_to_full_attention_like_transformers(tmp_path, capsys):
    hp = load_hparams(write_config(tmp_path, {"layer_types": [S] * 6}))
    assert hp.is_swa == (True,) * 5 + (False,)
    assert "forcing full_attention" in capsys.readouterr().err


def test_default_layer_types(tmp_path):
    text = {"num_hidden_layers": 12}
    config = write_config(tmp_path, text)
    data = json.loads((config / "config.json").read_text())
    del data["text_config"]["layer_types"]
    (config / "config.json").write_text(json.dumps(data))
    assert load_hparams(config).is_swa == ((True,) * 5 + (False,)) * 2


@pytest.mark.parametrize(
    "text,root,message",
    [
        ({"per_layer_config": {"5": {"intermediate_size": 8}}}, {}, "can only vary head_dim"),
        ({"num_hidden_layers": 12, "layer_types": ([S] * 5 + [F]) * 2,
          "per_layer_config": {"5": {"head_dim": 32}, "11": {"head_dim": 64}}}, {}, "different head_dim"),
        ({"rope_parameters": {"full_attention": {"rope_type": "yarn"}, "sliding_attention": {"rope_type": "default"}}},
         {}, "yarn"),
        ({"layer_types": [S, "chunked_attention"] * 3}, {}, "unsupported layer types"),
        ({"num_experts": None}, {}, "num_experts"),
        ({"hidden_size": "64"}, {}, "hidden_size"),
        ({}, {"canvas_length": 0}, "canvas_length"),
        ({}, {"tie_word_embeddings": False}, "tie_word_embeddings"),
        ({}, {"architectures": ["Gemma4ForConditionalGeneration"]}, "unsupported architecture"),
    ],
)
def test_configs_the_layout_cannot_express(tmp_path, text, root, message):
    with pytest.raises(ConvertError, match=message):
        load_hparams(write_config(tmp_path, text, **root))
