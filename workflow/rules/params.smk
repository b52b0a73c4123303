"""params.yaml checked against workflow/schemas/params.schema.yaml before anything else is read or run."""

from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

PARAMS_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "params.schema.yaml"


def params_problems(params: dict, schema_path: Path) -> list[str]:
    """One line per bad value of params.yaml: its key, its value and what it must be (the schema's description)."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(schema_path.read_text())

    def description(path: list) -> str | None:
        """The description of the nearest property on `path` (list items take their list's unless they have their own)."""
        node, found = schema, schema.get("description")
        for part in path:
            if isinstance(part, int):
                node = node.get("items", node)
                continue
            node = node.get("properties", {}).get(part)
            if node is None:
                break
            found = node.get("description", found)
        return found

    problems = []
    validator = jsonschema.validators.validator_for(schema)(schema)
    for error in sorted(
        validator.iter_errors(params), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        path = list(error.absolute_path)
        key = ".".join(str(p) for p in path if not isinstance(p, int)) or "(top level)"
        if error.validator == "required":
            missing = error.message.split("'")[1]
            path = [*path, missing]
            key = ".".join(str(p) for p in path)
            problems.append(f"{key}: missing; it must be {description(path) or 'set'}")
            continue
        if error.validator == "additionalProperties":
            problems.append(f"{key}: {error.message}")
            continue
        problems.append(
            f"{key}: {error.instance!r} is not valid; it must be {description(path) or error.message}"
        )
    return problems


def as_params(config: dict, overrides: dict) -> dict:
    """config with each --config value read as params.yaml's would be (Snakemake hands nested ones over as strings)."""
    import copy

    import yaml

    checked = copy.deepcopy(config)

    def read(value):
        # Every scalar of a nested override, in lists too (`runs={"seed": [0, 1]}`), arrives as a string.
        if isinstance(value, str):
            return yaml.safe_load(value)
        if isinstance(value, list):
            return [read(item) for item in value]
        if isinstance(value, dict):
            return {key: read(item) for key, item in value.items()}
        return value

    def apply(target: dict, override: dict) -> None:
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                apply(target[key], value)
            else:
                target[key] = read(value)

    apply(checked, dict(overrides))
    return checked


# params.yaml (and any --config override) checked before any job runs: one line per bad value.
CHECKED_PARAMS = as_params(config, workflow.config_settings.overwrite_config)
try:
    validate(CHECKED_PARAMS, str(PARAMS_SCHEMA), set_default=False)
except WorkflowError as error:
    problems = params_problems(CHECKED_PARAMS, PARAMS_SCHEMA)
    if not problems:
        raise
    raise WorkflowError(
        "params.yaml has {} bad value(s) (checked against workflow/schemas/params.schema.yaml):\n  ".format(
            len(problems)
        )
        + "\n  ".join(problems)
        + "\nFix them in params.yaml (or the --config override) and run again."
    ) from None

# Each test set's name is its folder under results/: no two may share one (a check JSON Schema cannot express).
_test_set_names = [test_set["name"] for test_set in CHECKED_PARAMS["test"]["sets"]]
_repeated = sorted(
    {name for name in _test_set_names if _test_set_names.count(name) > 1}
)
if _repeated:
    raise WorkflowError(
        "params.yaml has 1 bad value(s) (checked against workflow/schemas/params.schema.yaml):\n"
        f"  test.sets: the name(s) {', '.join(_repeated)} appear more than once; each set needs its own name "
        "(its folder under results/)\nFix them in params.yaml (or the --config override) and run again."
    )
