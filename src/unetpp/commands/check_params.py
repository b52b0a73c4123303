"""`unetpp check-params`: params.yaml against the workflow's schema, before any stage runs.

DVC's first stage: a bad value stops `dvc repro` here, with the message the
Snakefile gives (both come from `unetpp.paramcheck`), before any later stage
could remove its outputs. Its record holds no value of params.yaml, so a valid
edit rewrites the same bytes and reruns nothing downstream by itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--params", "params_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The params file to check (params.yaml).")
@click.option("--schema", "schema_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Its JSON Schema (workflow/schemas/params.schema.yaml).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The record written when every value is valid (e.g. data/params.checked.json); the same bytes "
                   "for any valid params file.")
def check_params(params_path: Path, schema_path: Path, out: Path) -> None:
    """Check a params file against the workflow's schema; write --out only when every value is valid."""
    from unetpp import paramcheck
    from unetpp.atomic import atomic_path
    from unetpp.errors import UnetppError

    for path, what in ((params_path, "params file"), (schema_path, "schema")):
        if not path.is_file():
            raise UnetppError(f"{path}: the {what} does not exist; pass --params params.yaml and --schema "
                              f"{paramcheck.SCHEMA_NAME} from the repository root")
    try:
        params = paramcheck.load_yaml(params_path)
    except Exception as exc:  # yaml's errors have no common base but YAMLError, and a read can fail too
        raise UnetppError(f"{params_path}: cannot be read as YAML ({exc}); fix its syntax and run again") from exc
    found = paramcheck.problems(params, paramcheck.load_yaml(schema_path))
    if found:
        raise UnetppError(paramcheck.message(found, params_path.name))
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"params": params_path.name, "schema": paramcheck.SCHEMA_NAME, "valid": True}) + "\n")
    click.echo(f"{params_path}: every value valid ({schema_path}); wrote {out}", err=True)
