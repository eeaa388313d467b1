# The trained "no-feature" null (config `null:` per experiment): a Gaussian twin of every
# store with the same mean and covariance, SAEs trained on it with the same recipe, their
# seed pairs compared exactly like the real ones. Everything lives under results/{exp}/null/
# in the same layout as the real artifacts; the pair, ground-truth and Fourier
# rules are the real ones (`use rule`), with other inputs and outputs; the SAEs are trained
# by rules train_null_saes_<exp> (saes.smk).


rule make_null_store:
    input:
        store=lambda w: store_path(w.exp, w.hook),
    output:
        "results/{exp}/null/stores/{hook}.h5",
    log:
        "results/logs/make_null_store/{exp}/{hook}.log",
    params:
        exclude_positions=lambda w: list(EXPERIMENTS[w.exp]["sae"].get("exclude_positions", [])),
        exclude_norm_above=lambda w: EXPERIMENTS[w.exp]["sae"].get("exclude_norm_above"),
        seed=lambda w: EXPERIMENTS[w.exp]["null"]["store_seed"],
        code=code_of("scripts/make_null_store.py"),
    threads: 1
    resources:
        mem_mb=make_null_store_mem_mb,
        runtime=make_null_store_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/make_null_store.py"


# null SAEs: rules train_null_saes_<exp> in saes.smk


use rule compare_seed_pair as compare_null_seed_pair with:
    input:
        a="results/{exp}/null/saes/{hook}/{variant}/seed{a}",
        b="results/{exp}/null/saes/{hook}/{variant}/seed{b}",
    output:
        "results/{exp}/null/pairs/{hook}/{variant}/seed{a}-seed{b}.json",
    log:
        "results/logs/compare_null_seed_pair/{exp}/{hook}/{variant}/seed{a}-seed{b}.log",


# ground truth of null SAEs: against the real store's (null stores have none)
use rule ground_truth_recovery as null_ground_truth_recovery with:
    input:
        sae="results/{exp}/null/saes/{hook}/{variant}/seed{seed}",
        store=lambda w: store_path(w.exp, w.hook),
    output:
        "results/{exp}/null/ground_truth/{hook}/{variant}/seed{seed}.json",
    log:
        "results/logs/null_ground_truth_recovery/{exp}/{hook}/{variant}/seed{seed}.log",


use rule fourier_overlap as null_fourier_overlap with:
    input:
        sae="results/{exp}/null/saes/{hook}/{variant}/seed{seed}",
        store=lambda w: store_path(w.exp, w.hook),
    output:
        "results/{exp}/null/fourier/{hook}/{variant}/seed{seed}.json",
    log:
        "results/logs/null_fourier_overlap/{exp}/{hook}/{variant}/seed{seed}.log",
