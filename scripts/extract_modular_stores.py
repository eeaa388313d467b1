"""Every input of the modular model through its hooks, into one store per hook (rules extract_modular_stores_*)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    from saesim.sources.extraction import extract_modular_stores
    from saesim.sources.modular import load_modular_model

    model, cfg, history = load_modular_model(smk.input.model)
    store = smk.params.store  # the validated config: defaults from the schema
    summary = extract_modular_stores(
        model,
        smk.params.hooks,
        dict(zip(smk.params.hooks, smk.output)),
        n_rows=store.get("n_rows"),  # None: every input once
        dtype=store["dtype"],
        chunk_rows=store["chunk_rows"],
        model_name=f"modular-p{cfg.p}-seed{cfg.seed}",
        rel_threshold=smk.params.key_rel_threshold,
        attrs={"config": cfg.to_dict(), "grok_epoch": history.get("grok_epoch") or -1},
    )
    print(summary)


run(snakemake, main)  # noqa: F821
