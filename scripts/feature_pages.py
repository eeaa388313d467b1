"""Feature pages of one experiment (rule feature_pages_<exp>): per variant, one seed pair's matched latents
side by side (saesim.report.feature_pages), and an index page."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from saesim.stores.activation_store import open_store  # noqa: E402
from saesim.analysis.coactivation import first_eligible_rows  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402
from saesim.report.feature_pages import (  # noqa: E402
    build_card, pair_pass, render_index, render_pair_page, select_cards, token_windows,
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


def lm_context(smk, store):
    """Store rows -> decoded token windows (the store's own token ids), or None for a store without tokens."""
    if not store.has_tokens:
        return None, "rows (no tokens in this store)"
    from saesim.sources.language import load_tokenizer

    source = smk.params.source
    tok = load_tokenizer({"source": source["kind"], **{k: source[k] for k in ("name", "gguf_file") if k in source}})
    ctx_ids, token_ids = store.row_array("context_ids"), store.row_array("token_ids")
    cache = {}

    def decode(t):
        if t not in cache:
            cache[t] = tok.decode([t])
        return cache[t]

    return (lambda rows: token_windows(rows, ctx_ids, token_ids, decode)), "tokens decoded with the model's tokenizer"


def modular_context(smk, store):
    """Store rows -> the input "a + b =" of the modular-addition model (context id a * p + b), the '=' highlighted."""
    p = int(smk.params.source["p"])
    ctx_ids = store.row_array("context_ids")

    def windows(rows):
        return [([f"{int(ctx_ids[r]) // p} + {int(ctx_ids[r]) % p} ", "="], 1) for r in rows]

    return windows, f"inputs a + b (mod {p}); activation at the '=' token"


def one_page(smk, job, opts):
    enc_a, enc_b = load_encoder(job["sae_a"]), load_encoder(job["sae_b"])
    n_a, n_b = enc_a["W_dec"].shape[0], enc_b["W_dec"].shape[0]
    res, arr = compare_decoders(enc_a["W_dec"], enc_b["W_dec"], with_baseline=False, return_arrays=True,
                                memory_budget_mb=smk.params.memory_budget_mb)
    rows, cols, cos = arr["matching_rows"], arr["matching_cols"], arr["matching_cos"]
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
        if opts["kind"] == "language":
            context, how = lm_context(smk, store)
        elif opts["kind"] == "modular" and store.has_tokens:
            context, how = modular_context(smk, store)
        else:
            context, how = None, "store rows"
        group = store.group("ground_truth") if "ground_truth" in store.file else {}
        truth = group.get("features")  # toy (sae_lens.synthetic) stores
        fourier_basis = group.get("activation_subspace")  # modular stores: the hook's key-frequency subspace
        keys = group.get("key_frequencies")
    sel = select_cards(rows, cols, cos, n_a, n_b, pp.a.frequency, pp.b.frequency, n_best=opts["n_best"],
                       n_spread=opts["n_spread"], n_unmatched=opts["n_unmatched"],
                       unmatched_below=opts["unmatched_below"])
    extra_a = extra_b = lambda lat: {}  # noqa: E731
    if truth is not None:
        ta, tb = np.abs(latent_truth_cosines(enc_a["W_dec"], truth)), np.abs(latent_truth_cosines(enc_b["W_dec"], truth))

        def extra_a(lat):
            return {"ground truth": f"feature {int(ta[lat].argmax())} at |cos| {ta[lat].max():.3f}"}

        def extra_b(lat):
            return {"ground truth": f"feature {int(tb[lat].argmax())} at |cos| {tb[lat].max():.3f}"}

    if fourier_basis is not None:
        from saesim.analysis.fourier import fourier_overlap

        fa, fb = fourier_overlap(enc_a["W_dec"], fourier_basis), fourier_overlap(enc_b["W_dec"], fourier_basis)
        where = f"key frequencies {', '.join(str(int(k)) for k in keys)}" if keys is not None else "key frequencies"

        def extra_a(lat):
            return {"Fourier overlap": f"{fa[lat]:.3f} of the decoder row in the subspace of the {where}"}

        def extra_b(lat):
            return {"Fourier overlap": f"{fb[lat]:.3f} of the decoder row in the subspace of the {where}"}

    items = []
    for s in sel:
        k = s["k"]
        items.append({
            "group": s["group"], "a": s["a"], "b": s["b"],
            "cos": None if k is None else float(cos[k]),
            "corr": None if k is None else float(pp.corr[k]),
            "cofire": None if k is None else float(pp.cofire[k]),
            "card_a": build_card(pp.a, s["a"], context=context, row_ids=row_ids,
                                 extra=extra_a(s["a"]) if s["a"] is not None else None),
            "card_b": build_card(pp.b, s["b"], context=context, row_ids=row_ids,
                                 extra=extra_b(s["b"]) if s["b"] is not None else None),
        })
    title = f"{job['exp']} / {job['hook']} / {job['variant']}: seed {job['a']} vs seed {job['b']}"
    meta = {
        "SAE A": job["sae_a"], "SAE B": job["sae_b"], "store": job["store"],
        "rows": f"first {len(row_ids)} eligible store rows", "contexts": how,
        "one-to-one matching": f"mean |cos| {res['hungarian_mean_cos']:.4f} over {len(rows)} pairs "
                               f"({'exact Hungarian' if res['matching_exact'] else 'sparse top-m'})",
        "unmatched": f"no partner at decoder |cos| >= {opts['unmatched_below']}",
    }
    write_text_atomic(job["out"], render_pair_page(title, meta, items))
    return {"href": str(Path(job["out"]).relative_to(Path(smk.output.index).parent)),
            "hook": job["hook"], "variant": job["variant"], "pair": f"seed{job['a']}-seed{job['b']}",
            "hungarian_mean_cos": float(res["hungarian_mean_cos"]), "n_cards": len(items)}


def main(smk):
    opts = dict(smk.params.options)
    pages = [one_page(smk, job, opts) for job in smk.params.jobs]
    write_text_atomic(smk.output.index, render_index(f"{smk.params.exp}: feature pages", pages))
    print(pages)


run(snakemake, main)  # noqa: F821
