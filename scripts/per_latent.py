"""Per-latent stability of every SAE of one experiment: tables, summary and figure (rule per_latent_<exp>)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    import pandas as pd

    from saesim.analysis.per_latent import run_experiment
    from saesim.report.figures_per_latent import per_latent_figure
    from saesim.report.figures import paper_style, save_figure

    saes = [dict(s, out=out) for s, out in zip(smk.params.saes, smk.output.saes)]
    variants, sae_rows, pair_rows, spectra, scatter = run_experiment(saes, smk.params.options, smk.params.memory_budget_mb)
    for rows, path in ((variants, smk.output.table), (sae_rows, smk.output.saes_table), (pair_rows, smk.output.pairs_table)):
        pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6g")
    paper_style()
    save_figure(per_latent_figure(pd.DataFrame(variants), spectra, scatter, title=smk.params.exp),
                smk.output.pdf, smk.output.png)
    print(pd.DataFrame(variants).to_string())


run(snakemake, main)  # noqa: F821
