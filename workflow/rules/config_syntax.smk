# Included before the Snakefile's configfile directive: a YAML syntax error in the default
# config file becomes one line with its line and column (Snakemake's own message names
# neither). Files given with --configfile are read by Snakemake before any of this runs.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from saesim.config import check_yaml_syntax  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402

DEFAULT_CONFIGFILE = "config.yaml"

if Path(DEFAULT_CONFIGFILE).exists():
    try:
        check_yaml_syntax(DEFAULT_CONFIGFILE)
    except SaesimError as _err:
        raise WorkflowError(f"Invalid configuration: {_err}") from None
