"""Text corpora tokenized into fixed-length contexts.

Two sources of documents:

* :func:`iter_stdlib_docstrings` -- offline and deterministic: the docstrings
  of the Python standard library installed on this machine (modules, classes,
  functions), files in sorted path order, nodes in ``ast.walk`` order.  No text
  is copied into the repository; the corpus is rebuilt from the interpreter's
  own sources (so it is fixed for a given Python version -- the version is
  recorded in :class:`TokenizedCorpus.meta`).
* :func:`iter_hf_dataset` -- for users online: a Hugging Face dataset streamed
  by name, one document per record.

:func:`tokenize_documents` turns documents into ``[n_contexts, n_ctx]`` token
ids: documents are encoded one by one, joined (with an optional separator
token between them), cut into pieces of ``n_ctx - 1`` tokens and each piece
gets a BOS token in front.  Along with the ids it returns, per token, the
document id and the character offset of the token in its document (-1 for BOS
and separators).
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
import sysconfig
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from saesim.errors import SaesimError

EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"})

# encode(text) -> (token ids, character start offset of each token)
Encoder = Callable[[str], tuple[list[int], list[int]]]


@dataclass
class TokenizedCorpus:
    """Token ids ``[n_contexts, n_ctx]`` with per-token provenance."""

    tokens: np.ndarray  # int32 [n_contexts, n_ctx]; column 0 is BOS
    doc_ids: np.ndarray  # int32 [n_contexts, n_ctx]; -1 for BOS / separator
    char_offsets: np.ndarray  # int32 [n_contexts, n_ctx]; -1 for BOS / separator
    doc_names: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_contexts(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def n_ctx(self) -> int:
        return int(self.tokens.shape[1])

    def content_hash(self) -> str:
        """sha256 of the token ids (what extraction consumes)."""
        return hashlib.sha256(np.ascontiguousarray(self.tokens, dtype=np.int32).tobytes()).hexdigest()


# --------------------------------------------------------------------------- documents


def stdlib_dir() -> Path:
    """Directory of this interpreter's standard-library sources."""
    return Path(sysconfig.get_paths()["stdlib"])


def iter_stdlib_files(root: str | os.PathLike | None = None) -> Iterator[Path]:
    """``*.py`` files under ``root`` (default: the stdlib), sorted, skipping tests and site-packages."""
    root = Path(root) if root is not None else stdlib_dir()
    if not root.is_dir():
        raise SaesimError(f"{root}: standard-library source directory not found")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


def docstrings_of_source(source: str) -> Iterator[tuple[int, str]]:
    """``(line, docstring)`` of the module, classes and functions in ``source`` (ast.walk order)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old sources
        tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield getattr(node, "lineno", 0), doc


def iter_stdlib_docstrings(
    root: str | os.PathLike | None = None, *, min_chars: int = 40, max_docs: int | None = None
) -> Iterator[tuple[str, str]]:
    """``(name, text)`` for every stdlib docstring of at least ``min_chars`` characters.

    ``name`` is ``relative/path.py:line``.  Files that do not parse or decode
    are skipped (the same ones every run).
    """
    root = Path(root) if root is not None else stdlib_dir()
    n = 0
    for path in iter_stdlib_files(root):
        try:
            source = path.read_text(encoding="utf-8")
            docs = list(docstrings_of_source(source))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        rel = path.relative_to(root).as_posix()
        for line, doc in docs:
            if len(doc) < min_chars:
                continue
            yield f"{rel}:{line}", doc
            n += 1
            if max_docs is not None and n >= max_docs:
                return


def iter_hf_dataset(
    name: str, *, split: str = "train", text_column: str = "text", config_name: str | None = None
) -> Iterator[tuple[str, str]]:
    """``(name#index, text)`` records of a Hugging Face dataset, streamed (needs the hub)."""
    from saesim.sources.hub import require_hub

    if not Path(name).exists():
        require_hub(f"dataset {name!r}")
    try:
        import datasets
    except ImportError:
        raise SaesimError(f"dataset {name!r}: the 'datasets' package is not installed") from None
    try:
        stream = datasets.load_dataset(name, config_name, split=split, streaming=True)
    except Exception as exc:  # noqa: BLE001 - hub/dataset errors have many types
        raise SaesimError(f"dataset {name!r}: cannot be streamed ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    for i, record in enumerate(stream):
        if text_column not in record:
            raise SaesimError(f"dataset {name!r}: no column {text_column!r} (columns: {sorted(record)})")
        yield f"{name}#{i}", record[text_column]


# --------------------------------------------------------------------------- tokenization


def hf_encoder(tokenizer) -> Encoder:
    """Adapt a Hugging Face tokenizer: ids without special tokens, plus character offsets."""

    def encode(text: str) -> tuple[list[int], list[int]]:
        if getattr(tokenizer, "is_fast", False):
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return list(enc["input_ids"]), [start for start, _ in enc["offset_mapping"]]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return list(ids), [-1] * len(ids)

    return encode


def tokenize_documents(
    documents: Iterable[tuple[str, str]],
    encode: Encoder,
    *,
    n_ctx: int,
    n_contexts: int,
    bos_id: int,
    separator_id: int | None = None,
) -> TokenizedCorpus:
    """Cut documents into ``n_contexts`` contexts of ``n_ctx`` tokens, BOS first in each.

    Documents are consumed lazily and only until enough tokens are collected.
    Raises :class:`SaesimError` when the documents run out first.
    """
    if n_ctx < 2 or n_contexts < 1:
        raise SaesimError(f"corpus: need n_ctx >= 2 and n_contexts >= 1, got n_ctx={n_ctx}, n_contexts={n_contexts}")
    body = n_ctx - 1
    needed = n_contexts * body
    ids = np.empty(needed, dtype=np.int64)
    docs = np.empty(needed, dtype=np.int64)
    offsets = np.empty(needed, dtype=np.int64)
    names: list[str] = []
    filled = 0
    for doc_id, (name, text) in enumerate(documents):
        tok, off = encode(text)
        if separator_id is not None:
            tok, off = [*tok, separator_id], [*off, -1]
        take = min(len(tok), needed - filled)
        ids[filled : filled + take] = tok[:take]
        docs[filled : filled + take] = doc_id
        offsets[filled : filled + take] = off[:take]
        if separator_id is not None and take == len(tok):
            docs[filled + take - 1] = -1
        names.append(name)
        filled += take
        if filled == needed:
            break
    if filled < needed:
        raise SaesimError(
            f"corpus: documents ran out after {filled} tokens; {needed} needed for {n_contexts} contexts of {n_ctx}"
        )

    def with_bos(arr: np.ndarray, fill: int) -> np.ndarray:
        out = np.full((n_contexts, n_ctx), fill, dtype=np.int32)
        out[:, 1:] = arr.reshape(n_contexts, body)
        return out

    return TokenizedCorpus(
        tokens=with_bos(ids, bos_id),
        doc_ids=with_bos(docs, -1),
        char_offsets=with_bos(offsets, -1),
        doc_names=names,
        meta={"n_ctx": n_ctx, "n_contexts": n_contexts, "bos_id": bos_id, "separator_id": separator_id},
    )


def build_corpus(
    tokenizer,
    *,
    source: str = "stdlib",
    n_ctx: int = 128,
    n_tokens: int = 65536,
    dataset: str | None = None,
    split: str = "train",
    text_column: str = "text",
    min_chars: int = 40,
) -> TokenizedCorpus:
    """Tokenize ``n_tokens`` (rounded down to whole contexts) from ``source``.

    ``source`` is ``"stdlib"`` (offline docstrings) or ``"hf"`` (``dataset`` by
    name, streamed).  BOS comes from the tokenizer (``bos_token_id``, else
    ``eos_token_id``); documents are separated by its EOS token.
    """
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise SaesimError("corpus: tokenizer has neither a BOS nor an EOS token")
    if source == "stdlib":
        docs = iter_stdlib_docstrings(min_chars=min_chars)
        origin = f"python{sys.version_info.major}.{sys.version_info.minor} stdlib docstrings ({sys.version.split()[0]})"
    elif source == "hf":
        if not dataset:
            raise SaesimError("corpus: source 'hf' needs a dataset name")
        docs = iter_hf_dataset(dataset, split=split, text_column=text_column)
        origin = f"hf dataset {dataset} split {split}"
    else:
        raise SaesimError(f"corpus: source must be 'stdlib' or 'hf', got {source!r}")
    n_contexts = n_tokens // n_ctx
    corpus = tokenize_documents(
        docs, hf_encoder(tokenizer), n_ctx=n_ctx, n_contexts=n_contexts, bos_id=int(bos), separator_id=tokenizer.eos_token_id
    )
    corpus.meta.update(source=source, origin=origin, n_tokens=n_contexts * n_ctx, tokens_sha256=corpus.content_hash())
    return corpus


def save_corpus(path: str | os.PathLike, corpus: TokenizedCorpus) -> Path:
    """Write the corpus as ``.npz`` (tokens, doc_ids, char_offsets, doc_names, meta JSON) atomically."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}.npz")
    np.savez(
        tmp,
        tokens=corpus.tokens,
        doc_ids=corpus.doc_ids,
        char_offsets=corpus.char_offsets,
        doc_names=np.asarray(corpus.doc_names, dtype=np.str_),
        meta=np.asarray(json.dumps(corpus.meta, sort_keys=True)),
    )
    os.replace(tmp, path)
    return path


def load_corpus(path: str | os.PathLike) -> TokenizedCorpus:
    """Read a corpus written by :func:`save_corpus`."""
    import json

    path = Path(path)
    if not path.exists():
        raise SaesimError(f"{path}: corpus file does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            return TokenizedCorpus(
                tokens=z["tokens"],
                doc_ids=z["doc_ids"],
                char_offsets=z["char_offsets"],
                doc_names=[str(s) for s in z["doc_names"]],
                meta=json.loads(str(z["meta"])),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise SaesimError(f"{path}: not a saesim corpus file ({exc.__class__.__name__}: {exc})") from None


def heldout_corpus(tokenizer, n_contexts: int, **corpus_options: Any) -> tuple[TokenizedCorpus, TokenizedCorpus]:
    """``(training, held_out)``: the corpus ``build_corpus(**corpus_options)`` and the next ``n_contexts``.

    The held-out contexts continue the same document stream right after the
    training contexts, so no SAE trained on the training corpus saw them; the
    training part is returned too, so a caller can check it equals the corpus
    the stores were built from.
    """
    if n_contexts < 1:
        raise SaesimError(f"corpus: held-out contexts must be >= 1, got {n_contexts}")
    n_ctx = int(corpus_options.get("n_ctx", 128))
    n_train = int(corpus_options.get("n_tokens", 65536)) // n_ctx
    both = build_corpus(tokenizer, **{**corpus_options, "n_tokens": (n_train + n_contexts) * n_ctx})
    if both.n_contexts < n_train + n_contexts:
        raise SaesimError(
            f"corpus: the text source has {both.n_contexts} contexts of {n_ctx} tokens, "
            f"{n_train} for training and {n_contexts} held out need more"
        )

    def part(sl: slice) -> TokenizedCorpus:
        c = TokenizedCorpus(both.tokens[sl], both.doc_ids[sl], both.char_offsets[sl], both.doc_names, dict(both.meta))
        c.meta.update(n_tokens=c.tokens.size, tokens_sha256=c.content_hash())
        return c

    return part(slice(0, n_train)), part(slice(n_train, n_train + n_contexts))
