"""Feature pages of one experiment (rule feature_pages_<exp>): one page per job of plan.feature_page_jobs
(a variant's first seed pair, a suite cell: two SAEs over one store; saesim.report.feature_pages), and
an index page with one section per kind of pair."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from saesim.stores.activation_store import open_store  # noqa: E402
from saesim.analysis.coactivation import first_eligible_rows  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402
from saesim.report.feature_pages import (  # noqa: E402
    build_card, lens_entries, pair_pass, render_index, render_pair_page, select_cards, token_windows,
)
from saesim.analysis.ground_truth import encode_acts, latent_truth_cosines, load_encoder  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402
from saesim.similarity import compare_decoders  # noqa: E402
from saesim.similarity.universality.codes import iter_selected_rows  # noqa: E402


def write_text_atomic(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class Model:
    """What the job needs of a language model, loaded once for all its pages: the tokenizer and the
    final norm and unembedding (two tensors, not the model)."""

    def __init__(self, source):
        self.spec = {"source": source["kind"], **{k: source[k] for k in ("name", "gguf_file") if k in source}}

    @property
    @cache
    def tokenizer(self):
        from saesim.sources.language import load_tokenizer

        return load_tokenizer(self.spec)

    @property
    @cache
    def unembedding(self):
        from saesim.sources.language import unembedding_weights

        return unembedding_weights(self.spec)

    @cache
    def decode(self, t):
        return self.tokenizer.decode([int(t)])


def lm_context(model, store):
    """Store rows -> decoded token windows (the store's own token ids), or None for a store without tokens."""
    if not store.has_tokens:
        return None, "rows (no tokens in this store)"
    ctx_ids, token_ids = store.row_array("context_ids"), store.row_array("token_ids")
    return (lambda rows: token_windows(rows, ctx_ids, token_ids, model.decode)), "tokens decoded with the model's tokenizer"


def modular_context(p, store):
    """Store rows -> the input "a + b =" of the modular-addition model (context id a * p + b), the '=' highlighted."""
    ctx_ids = store.row_array("context_ids")

    def windows(rows):
        return [([f"{int(ctx_ids[r]) // p} + {int(ctx_ids[r]) % p} ", "="], 1) for r in rows]

    return windows, f"inputs a + b (mod {p}); activation at the '=' token"


def every_input(store, p):
    """The activations of all p * p inputs, row a * p + b (each input's first store row), or None when the
    store lacks some input."""
    ctx = store.row_array("context_ids")
    ids, first = np.unique(ctx, return_index=True)
    if len(ids) != p * p or not np.array_equal(ids, np.arange(p * p)):
        return None
    rows = np.sort(first)
    x = np.concatenate(list(iter_selected_rows(store, rows, 4096)))
    return x[np.argsort(ctx[rows], kind="stable")]


def side_cards(sel, side):
    return sorted({s[side] for s in sel if s[side] is not None})


def one_page(smk, job, opts, model):
    enc_a, enc_b = load_encoder(job["sae_a"]), load_encoder(job["sae_b"])
    n_a, n_b = enc_a["W_dec"].shape[0], enc_b["W_dec"].shape[0]
    res, arr = compare_decoders(enc_a["W_dec"], enc_b["W_dec"], with_baseline=False, return_arrays=True,
                                memory_budget_mb=smk.params.memory_budget_mb)
    rows, cols, cos = arr["matching_rows"], arr["matching_cols"], arr["matching_cos"]
    extras = {"a": {}, "b": {}}  # side -> latent -> {extra, spectrum, logit_lens}
    with open_store(job["store"]) as store:
        row_ids = first_eligible_rows(store, opts["exclude_positions"], opts["exclude_norm_above"], opts["max_rows"])
        if not len(row_ids):
            raise SaesimError(f"{job['store']}: no eligible rows for feature pages")
        chunks, start = [], 0
        for block in iter_selected_rows(store, row_ids, 1024):
            chunks.append((start, block))
            start += len(block)
        pp = pair_pass(lambda x: encode_acts(enc_a, x), lambda x: encode_acts(enc_b, x), chunks, n_a, n_b, rows, cols,
                       seed=opts["seed"])
        sel = select_cards(rows, cols, cos, n_a, n_b, pp.a.frequency, pp.b.frequency, n_best=opts["n_best"],
                           n_spread=opts["n_spread"], n_unmatched=opts["n_unmatched"],
                           unmatched_below=opts["unmatched_below"])
        group = store.group("ground_truth") if "ground_truth" in store.file else {}
        p = int(smk.params.source["p"]) if opts["kind"] == "modular" else None
        if opts["kind"] == "language":
            context, how = lm_context(model, store)
        elif p is not None and store.has_tokens:
            context, how = modular_context(p, store)
        else:
            context, how = None, "store rows"
        truth = group.get("features")  # toy (sae_lens.synthetic) stores
        fourier_basis = group.get("activation_subspace")  # modular stores: the hook's key-frequency subspace
        keys = group.get("key_frequencies")
        x_all = every_input(store, p) if p is not None and store.has_tokens and keys is not None else None
    meta = {}
    for side, enc in (("a", enc_a), ("b", enc_b)):
        lats = side_cards(sel, side)
        for lat in lats:
            extras[side][lat] = {"extra": {}}
        if truth is not None:
            tc = np.abs(latent_truth_cosines(enc["W_dec"][lats], truth)) if lats else np.zeros((0, 1))
            for lat, row in zip(lats, tc):
                extras[side][lat]["extra"]["ground truth"] = f"feature {int(row.argmax())} at |cos| {row.max():.3f}"
        if fourier_basis is not None and lats:
            from saesim.analysis.fourier import fourier_overlap

            where = f"key frequencies {', '.join(str(int(k)) for k in keys)}" if keys is not None else "key frequencies"
            for lat, v in zip(lats, fourier_overlap(enc["W_dec"][lats], fourier_basis)):
                extras[side][lat]["extra"]["Fourier overlap"] = f"{v:.3f} of the decoder row in the subspace of the {where}"
        if x_all is not None and lats:
            from saesim.analysis.fourier import frequency_spectrum

            power = frequency_spectrum(encode_acts(enc, x_all)[:, lats], p)
            for lat, pw in zip(lats, power):
                extras[side][lat]["spectrum"] = {"power": pw.tolist(), "keys": [int(k) for k in keys]}
            meta["Fourier spectrum"] = (f"share of each latent's activation variance over all {p * p} inputs at frequency k "
                                        f"(functions of a, b, a + b, a - b); key frequencies in red")
        if opts["kind"] == "language" and opts["logit_tokens"] > 0 and lats and model.unembedding is not None:
            from saesim.analysis.logit_lens import logit_lens

            u = model.unembedding
            lens = logit_lens(enc["W_dec"][lats], u["w_norm"], u["W_U"], opts["logit_tokens"], center=u["center"])
            for lat, entry in zip(lats, lens_entries(*lens, model.decode)):
                extras[side][lat]["logit_lens"] = entry
            meta["logit lens"] = (f"logits of W_U^T (w_norm * d / rms(d)) for decoder row d: the model's final RMSNorm "
                                  f"and unembedding ({u['how']})")

    def card(side, stats, lat):
        if lat is None:
            return None
        e = extras[side][lat]
        return build_card(stats, lat, context=context, row_ids=row_ids, extra=e["extra"],
                          spectrum=e.get("spectrum"), logit_lens=e.get("logit_lens"))

    items = []
    for s in sel:
        k = s["k"]
        items.append({
            "group": s["group"], "a": s["a"], "b": s["b"],
            "cos": None if k is None else float(cos[k]),
            "corr": None if k is None else float(pp.corr[k]),
            "cofire": None if k is None else float(pp.cofire[k]),
            "card_a": card("a", pp.a, s["a"]), "card_b": card("b", pp.b, s["b"]),
        })
    meta = {
        f"SAE A ({job['name_a']})": job["sae_a"], f"SAE B ({job['name_b']})": job["sae_b"], "store": job["store"],
        "rows": f"first {len(row_ids)} eligible store rows", "contexts": how,
        "one-to-one matching": f"mean |cos| {res['hungarian_mean_cos']:.4f} over {len(rows)} pairs "
                               f"({'exact Hungarian' if res['matching_exact'] else 'sparse top-m'})",
        "unmatched": f"no partner at decoder |cos| >= {opts['unmatched_below']}",
        "same latent id": f"{np.mean(rows == cols):.1%} of the matched pairs pair latent i with latent i (independent "
                          f"initialisations: about 1/{max(n_a, n_b)}; far more: the two SAEs started from shared rows)",
        **meta,
    }
    write_text_atomic(job["out"], render_pair_page(job["title"], meta, items, sides=(job["name_a"], job["name_b"])))
    return {"href": str(Path(job["out"]).relative_to(Path(smk.output.index).parent)), "section": job["section"],
            "label": job["label"], "hungarian_mean_cos": float(res["hungarian_mean_cos"]), "n_cards": len(items)}


def main(smk):
    opts = dict(smk.params.options)
    model = Model(smk.params.source) if opts["kind"] == "language" else None
    pages = [one_page(smk, job, opts, model) for job in smk.params.jobs]
    write_text_atomic(smk.output.index, render_index(f"{smk.params.exp}: feature pages", pages))
    print(pages)


run(snakemake, main)  # noqa: F821
