"""Co-activation of every SAE's latents and whether matched latents of two seeds keep their
co-activation partners, against random relabelling (rule coactivation)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    import pandas as pd
    from tqdm import tqdm

    from saesim.stores.activation_store import open_store
    from saesim.analysis.coactivation import first_eligible_rows, partner_overlap, sae_coactivation, sae_summary, top_partners
    from saesim.saes.loading import decoder_rows
    from saesim.workflow.layout import ArtifactId, sae_key, sae_key_identity
    from saesim.report.figures import coactivation_plot, paper_style, save_figure
    from saesim.similarity import one_to_one_matching

    opts = smk.params.options
    rows_of = {}
    summaries, tops, overlaps = [], [], []
    partners = {}
    for key, sae_path in tqdm(list(zip(smk.params.sae_keys, smk.input.saes)), desc="co-activation", unit="SAE"):
        sae = sae_key_identity(key, smk.wildcards.exp)
        hook, variant, seed = sae.hook, sae.variant, sae.seed
        store_path = smk.params.store_of[hook]
        with open_store(store_path) as store:
            if hook not in rows_of:
                rows_of[hook] = first_eligible_rows(
                    store, smk.params.exclude_positions, smk.params.exclude_norm_above, opts["max_rows"]
                )
            pairs = sae_coactivation(sae_path, store, rows_of[hook], min_count=opts["min_count"])
        summary, top = sae_summary(pairs, cluster_jaccard=opts["cluster_jaccard"])
        ident = {"hook": hook, "variant": variant, "seed": seed}
        summaries.append({**ident, **summary})
        tops += [{**ident, "rank": r + 1, **t} for r, t in enumerate(top)]
        partners[key] = top_partners(pairs, opts["partners"])
    for hook, variant, a, b in smk.params.seed_pairs:
        ka, kb = (sae_key(ArtifactId(smk.wildcards.exp, hook, variant, (s,))) for s in (a, b))
        match = one_to_one_matching(
            decoder_rows(smk.input.saes[smk.params.sae_keys.index(ka)]),
            decoder_rows(smk.input.saes[smk.params.sae_keys.index(kb)]),
        )
        res = partner_overlap(partners[ka], partners[kb], match.rows, match.cols, n_null=opts["n_null"], seed=0)
        overlaps.append({"hook": hook, "variant": variant, "seed_a": a, "seed_b": b, **res})
    for frame, path in ((summaries, smk.output.table), (tops, smk.output.pairs), (overlaps, smk.output.overlap)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(frame).to_csv(path, index=False, float_format="%.6g")
    paper_style()
    fig = coactivation_plot(pd.DataFrame(summaries), pd.DataFrame(overlaps), title=smk.wildcards.exp)
    save_figure(fig, smk.output.pdf, smk.output.png)
    print(pd.DataFrame(overlaps).to_string())


run(snakemake, main)  # noqa: F821
