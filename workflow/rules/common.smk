# Configuration validation, the workflow's plan and the code hashes shared by all rules.
# Rules call the plan directly: ``plan`` (saesim.workflow.planning.Plan) for every DAG fact,
# ``layout`` for every path and log, ``planning.rule_name`` for every per-experiment rule.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from saesim.workflow.config import check_device_available, validate_config  # noqa: E402
from saesim.workflow import layout, suite_runs  # noqa: E402
from saesim.workflow.layout import ArtifactId  # noqa: E402
from saesim.workflow.codehash import cached_code_hash  # noqa: E402
from saesim.workflow import planning  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402

try:
    _validated = validate_config(
        dict(config), workflow.source_path("../schemas/config.schema.yaml"), source="config"
    )
except SaesimError as _err:
    raise WorkflowError(f"Invalid configuration: {_err}") from None
config.clear()
config.update(_validated)

try:
    plan = planning.Plan(config)
    plan.check()
except SaesimError as _err:
    raise WorkflowError(f"Invalid configuration: {_err}") from None

# experiment names are single path components, so results/{exp}/null/... never matches
# a rule of the real artifacts with an experiment named "{exp}/null"
wildcard_constraints:
    exp=layout.FIELD_PATTERNS["exp"],

SRC = Path(workflow.basedir) / "src" / "saesim"


onstart:
    # after the DAG is built and before any job: the executor is known only here, and jobs
    # submitted to a cluster find their GPU on their node, not on this (login) host
    if workflow.local_exec:
        try:
            check_device_available(plan.device)
        except SaesimError as _err:
            raise WorkflowError(f"Invalid configuration: {_err}") from None


def code_of(script):
    """A rule's ``code`` param: hash of its script (path from the repository root) and every
    saesim module the script imports, transitively (saesim.workflow.codehash). Editing any of them
    reruns the rule's jobs; moving the project folder reruns nothing."""
    return cached_code_hash(str(Path(workflow.basedir) / script), str(SRC))


def check_code_params(rules):
    """Each scripted rule has ``code=code_of("scripts/<its script>")`` (checked at the end of the Snakefile)."""
    for r in rules:
        if r.script is None:
            continue
        script = f"scripts/{Path(r.script).name}"
        if r.params.get("code") != code_of(script):
            raise WorkflowError(
                f"params of rule {r.name} need code=code_of({script!r}), so that editing the code it runs reruns it"
            )
