"""Workflow logic the Snakemake rule files call: the resource cost model of every job
(:mod:`saesim.workflow.resources`) and DAG planning, seed pairs and figure-panel selection
(:mod:`saesim.workflow.planning`). Pure functions of the validated config and plain numbers,
unit-tested; ``workflow/rules/*.smk`` keep the rules and thin input functions around them.

No rule script imports this package, so it enters no rule's code hash (saesim.workflow.codehash).
"""
