# saesim: do sparse autoencoders learn the same features?
#
#   snakemake --cores all                         # the default experiments (config.yaml)
#   snakemake --cores 8 --resources gpu=1         # a GPU workstation
#   snakemake --profile profiles/slurm            # a SLURM cluster
#   snakemake --cores 2 results/figures/toy_stability_vs_l0.pdf   # one figure and what it needs

from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/config_syntax.smk"


configfile: DEFAULT_CONFIGFILE


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/stores.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/saes.smk"
include: "workflow/rules/similarity.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/universality.smk"
include: "workflow/rules/convergence.smk"
include: "workflow/rules/seed_modes.smk"
include: "workflow/rules/null.smk"
include: "workflow/rules/randmodel.smk"
include: "workflow/rules/suites.smk"
include: "workflow/rules/per_latent.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/geometry.smk"


# every rule's code param covers the code its script runs (common.smk code_of)
check_code_params(workflow.rules)


rule all:
    default_target: True
    input:
        plan.all_targets(),
