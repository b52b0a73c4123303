"""params.yaml checked against workflow/schemas/params.schema.yaml before anything else is read or run."""

from pathlib import Path

import importlib.util

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

PARAMS_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "params.schema.yaml"


def load_paramcheck():
    """src/unetpp/paramcheck.py by its path: the message DVC's check_params stage gives too, no install needed."""
    path = Path(workflow.basedir) / "src" / "unetpp" / "paramcheck.py"
    spec = importlib.util.spec_from_file_location("unetpp_paramcheck", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


PARAMCHECK = load_paramcheck()


def from_workflow(path: str) -> str:
    """A path of the repository (code, schema) as seen from the working directory.

    The same string in the repository root; `../src/...` under `snakemake --directory .test`
    (the demo), whose working directory holds only its params.yaml and outputs.
    """
    import os

    return os.path.relpath(os.path.join(workflow.basedir, path))


def read_override(value):
    """A --config value as params.yaml's would be: every scalar of a nested override, in lists too
    (`runs={"seed": [0, 1]}`), arrives as a string."""
    import yaml

    if isinstance(value, str):
        return yaml.safe_load(value)
    if isinstance(value, list):
        return [read_override(item) for item in value]
    if isinstance(value, dict):
        return {key: read_override(item) for key, item in value.items()}
    return value


def apply_override(target: dict, override: dict) -> None:
    """`override` merged into `target` in place, each value read by read_override."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            apply_override(target[key], value)
        else:
            target[key] = read_override(value)


def apply_variant_overrides(params: dict, overrides: dict) -> None:
    """A --config override of variants.<name> applied to run_variants' <name> too.

    In params.yaml run_variants lists aliases of the variants, so a change of variants.<name> is a change of the
    run; Snakemake's config holds them as copies, which --config alone would leave apart (the run keeping the old
    value, the check calling the entry a copy). Like the override itself, it changes only that variant: a variant
    that merged the reference (`<<: *reference`) keeps the reference's value from params.yaml.
    """
    variants = overrides.get("variants")
    if not isinstance(variants, dict):
        return
    for name, values in variants.items():
        if not isinstance(values, dict):
            continue
        for entry in params.get("run_variants") or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                apply_override(entry, values)


def as_params(config: dict, overrides: dict) -> dict:
    """config with each --config value read as params.yaml's would be (Snakemake hands nested ones over as strings)."""
    import copy

    checked = copy.deepcopy(config)
    apply_override(checked, dict(overrides))
    apply_variant_overrides(checked, dict(overrides))
    return checked


# params.yaml (and any --config override) checked before any job runs: one line per bad value,
# the message of `unetpp check-params` (DVC's first stage).
CHECKED_PARAMS = as_params(config, workflow.config_settings.overwrite_config)
try:
    validate(CHECKED_PARAMS, str(PARAMS_SCHEMA), set_default=False)
except WorkflowError as error:
    if not PARAMCHECK.schema_problems(
        CHECKED_PARAMS, PARAMCHECK.load_yaml(PARAMS_SCHEMA)
    ):
        raise
_problems = PARAMCHECK.problems(CHECKED_PARAMS, PARAMCHECK.load_yaml(PARAMS_SCHEMA))
if _problems:
    raise WorkflowError(PARAMCHECK.message(_problems)) from None
# The runs (common.smk reads run_variants) take a --config override of their variant, as checked above.
apply_variant_overrides(config, dict(workflow.config_settings.overwrite_config))
