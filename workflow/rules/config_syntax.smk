# Included before the Snakefile's configfile directive: a YAML syntax error in the default
# config file becomes one line with its line and column (Snakemake's own message names
# neither). Files given with --configfile are read by Snakemake before any of this runs.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from saesim.workflow.config import check_no_yte, check_yaml_syntax  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402

DEFAULT_CONFIGFILE = "config.yaml"

if Path(DEFAULT_CONFIGFILE).exists():
    try:
        check_yaml_syntax(DEFAULT_CONFIGFILE)
        # a config is code when it asks for YTE: refused before the configfile directive evaluates it
        check_no_yte(DEFAULT_CONFIGFILE)
    except SaesimError as _err:
        raise WorkflowError(f"Invalid configuration: {_err}") from None

# --configfile files: Snakemake has read (and, with __use_yte__, evaluated) them already; still refuse
for _cf in list(getattr(getattr(workflow, "config_settings", None), "configfiles", None) or []):
    try:
        check_no_yte(_cf, already_evaluated=True)
    except SaesimError as _err:
        raise WorkflowError(f"Invalid configuration: {_err}") from None
