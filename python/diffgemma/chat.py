"""Chat formatting for the Python API.

`apply_chat_template` renders a conversation with a model's chat template. The native renderer
(`diffgemma._core`, the one the CLI uses) handles the Gemma 4 / DiffusionGemma templates it
recognizes; any other template is rendered with jinja2 the way transformers renders chat templates
(sandboxed, trim_blocks and lstrip_blocks, `raise_exception`, reasoning fields aliased), when jinja2
is installed.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

__all__ = ["apply_chat_template", "render_jinja"]

# transformers fills `reasoning_content` from the first non-None of these before rendering.
_REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


def _core():
    from . import _core

    return _core


def _alias_reasoning(messages: Sequence[dict]) -> list:
    out = []
    for m in messages:
        if isinstance(m, dict):
            reasoning = next((m[k] for k in _REASONING_FIELDS if m.get(k) is not None), None)
            if reasoning is not None:
                m = {"thinking": reasoning, **m, "reasoning_content": reasoning}
        out.append(m)
    return out


def render_jinja(
    template: str,
    messages: Sequence[dict],
    tools: Optional[Sequence[dict]] = None,
    add_generation_prompt: bool = True,
    bos_token: str = "<bos>",
    **kwargs: Any,
) -> str:
    """Render `template` with jinja2 as transformers' apply_chat_template does."""
    try:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as e:  # pragma: no cover - jinja2 ships with transformers
        raise ImportError("rendering this chat template needs jinja2 (pip install jinja2)") from e

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=_alias_reasoning(messages), tools=tools, add_generation_prompt=add_generation_prompt,
        bos_token=bos_token, **kwargs,
    )


def apply_chat_template(
    source: Any,
    messages: Sequence[dict],
    tools: Optional[Sequence[dict]] = None,
    add_generation_prompt: bool = True,
    enable_thinking: bool = False,
    preserve_thinking: bool = False,
    backend: str = "auto",
) -> str:
    """Render a conversation.

    source: a `diffgemma.Tokenizer` (its GGUF's template), or a template string.
    backend: "auto" (native when the template is recognized, else jinja2), "native" or "jinja".
    """
    core = _core()
    if isinstance(source, core.Tokenizer):
        template = source.chat_template
        bos = source.token_text(source.bos_id) if source.bos_id >= 0 else ""
    else:
        template, bos = str(source), "<bos>"
    if backend not in ("auto", "native", "jinja"):
        raise ValueError(f"backend must be 'auto', 'native' or 'jinja', not {backend!r}")
    if backend != "jinja":
        try:
            if isinstance(source, core.Tokenizer):
                return source.apply_chat_template(messages, tools, add_generation_prompt=add_generation_prompt,
                                                  enable_thinking=enable_thinking, preserve_thinking=preserve_thinking)
            return core.render_chat(template, messages, tools, add_generation_prompt=add_generation_prompt,
                                    enable_thinking=enable_thinking, preserve_thinking=preserve_thinking,
                                    bos_token=bos)
        except core.Error:
            if backend == "native" or not template:
                raise
    return render_jinja(template, messages, tools, add_generation_prompt=add_generation_prompt, bos_token=bos,
                        enable_thinking=enable_thinking, preserve_thinking=preserve_thinking)
