"""Stability and explained variance during training (rule plot_convergence)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.plotting import convergence_plot, save_figure  # noqa: E402
from saesim.rulekit import run  # noqa: E402


def main(smk):
    table = pd.read_csv(smk.input.table)
    row = table.iloc[0]
    same = bool(table["final_equals_published"].all())
    null = None
    if "stability" in smk.input.keys():  # the trained null of the published SAEs of this variant and hook
        from saesim.convergence import STABILITY_METRICS

        st = pd.read_csv(smk.input.stability)
        match = st[(st["hook"] == row["hook"]) & (st["variant"] == row["variant"])]
        if len(match):
            r = match.iloc[0]
            null = {m: (float(r[f"{m}_null"]), float(r.get(f"{m}_null_std", float("nan"))))
                    for m in STABILITY_METRICS if f"{m}_null" in r}
    fig = convergence_plot(
        table,
        null=null,
        title=f"{smk.wildcards.exp}: {row['variant']} at {row['hook']}, {int(row['n_seeds'])} seeds: has training converged?",
        note="last point = the published SAEs (bit for bit)" if same else "WARNING: last point differs from the published SAEs",
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
