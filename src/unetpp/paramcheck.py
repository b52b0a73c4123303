"""params.yaml checked against workflow/schemas/params.schema.yaml: one line per bad value, one message.

Both workflow tools give the same message from this module: the Snakefile
(workflow/rules/params.smk, loading this file by its path at parse time, before
any job) and DVC's first stage, `unetpp check-params` (before any stage can
remove its outputs). It imports nothing of the package, so Snakemake can load it
without `unetpp` installed; it reads params.yaml only when the check-params
command hands it the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SCHEMA_NAME = "workflow/schemas/params.schema.yaml"


def schema_problems(params: dict, schema: dict) -> list[str]:
    """One line per bad value of `params`: its key, its value and what it must be (the schema's description)."""
    import jsonschema

    def description(path: list) -> str | None:
        """The description of the nearest property on `path` (list items take their list's unless they have their own)."""
        node, found = schema, schema.get("description")
        for part in path:
            if isinstance(part, int):
                node = node.get("items", node)
                continue
            properties = node.get("properties", {})
            # A mapping of named entries (variants) describes its entries in additionalProperties.
            node = properties.get(part, node.get("additionalProperties") if part not in properties else None)
            if not isinstance(node, dict):
                break
            found = node.get("description", found)
        return found

    problems = []
    validator = jsonschema.validators.validator_for(schema)(schema)
    for error in sorted(validator.iter_errors(params), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        key = ".".join(str(p) for p in path if not isinstance(p, int)) or "(top level)"
        if error.validator == "required":
            missing = error.message.split("'")[1]
            path = [*path, missing]
            key = ".".join(str(p) for p in path)
            problems.append(f"{key}: missing; it must be {description(path) or 'set'}")
            continue
        if "propertyNames" in error.schema_path:
            names = description(path) and _at(schema, path).get("propertyNames", {}).get("description")
            problems.append(f"{key}: the name {error.instance!r} is not valid; it must be {names or error.message}")
            continue
        if error.validator == "not" and isinstance(error.schema, dict) and "moved_to" in error.schema:
            # A per-variant value left in its old section (train.lr, preprocess.size, ...): it would be ignored.
            moved = error.schema["moved_to"]
            problems.append(
                f"{key}: {error.instance!r} is not read here any more; it must be set per variant, as "
                f"variants.<name>.{moved} (e.g. variants.reference.{moved}, which the variants that merge the "
                'reference inherit; see "Protocol variants" in docs/pipeline.md)'
            )
            continue
        if error.validator == "additionalProperties":
            problems.append(f"{key}: {error.message}")
            continue
        problems.append(f"{key}: {error.instance!r} is not valid; it must be {description(path) or error.message}")
    return problems


def _at(schema: dict, path: list) -> dict:
    """The schema node of the mapping at `path` (named entries through additionalProperties)."""
    node = schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", node)
        else:
            node = node.get("properties", {}).get(part) or node.get("additionalProperties") or {}
    return node


def variant_problems(params: dict) -> list[str]:
    """The variants' rules JSON Schema cannot express: names, the run list, the sizes to preprocess."""
    problems = []
    variants = params.get("variants", {})
    for name, variant in variants.items():
        if variant.get("name") != name:
            problems.append(
                f"variants.{name}.name: {variant.get('name')!r} is not valid; it must be {name!r}, the variant's "
                f"key (a variant that merges another, `<<: *reference`, sets its own `name: {name}`)"
            )
    run = params.get("run_variants", [])
    names = [variant.get("name") for variant in run]
    for index, variant in enumerate(run):
        name = variant.get("name")
        if name not in variants:
            problems.append(
                f"run_variants[{index}]: {name!r} is no variant of variants ({', '.join(variants)}); "
                "list aliases of them, e.g. [*reference]"
            )
        elif variant != variants[name]:
            problems.append(
                f"run_variants[{index}]: differs from variants.{name}; write the alias *{name} "
                f"(and give variants.{name} the anchor &{name}) instead of a copy"
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"run_variants: {', '.join(repeated)} listed more than once; list each variant once")
    sizes = list(dict.fromkeys(variant.get("size") for variant in run))
    declared = params.get("preprocess", {}).get("sizes", [])
    if sorted(declared) != sorted(sizes):
        problems.append(
            f"preprocess.sizes: {declared!r} is not valid; it must be the distinct sizes of run_variants, "
            f"each once: {sizes!r}"
        )
    return problems


def other_problems(params: dict, root: str | os.PathLike[str] = ".") -> list[str]:
    """What JSON Schema cannot express: the variants' names, run list and sizes; repeated test-set names; own data
    (`any`) that is not there.

    `root` is the folder relative paths in params.yaml are taken from (the workflow's working directory).
    """
    problems = variant_problems(params)
    names = [test_set.get("name") for test_set in params.get("test", {}).get("sets", []) or []]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(
            f"test.sets: the name(s) {', '.join(repeated)} appear more than once; each set needs its own name "
            "(its folder under results/)"
        )
    data = params.get("data", {})
    raw = data.get("raw")
    if data.get("content_sha256") == "any" and isinstance(raw, str) and raw:
        where = Path(root) / raw
        if not os.path.lexists(where):
            problems.append(
                f"data.raw: {raw} does not exist; with data.content_sha256 `any` (your own data) the pipeline never "
                "downloads anything there (a download would be DSB2018, not your data): fix the path (a typo?), "
                "put your data there, or set data.content_sha256 to the DSB2018 release's digest to download it"
            )
    return problems


def problems(params: Any, schema: dict, root: str | os.PathLike[str] = ".") -> list[str]:
    """Every problem of `params`: the schema's first, then the checks JSON Schema cannot express."""
    if not isinstance(params, dict):
        return [f"(top level): {params!r} is not valid; it must be {schema.get('description') or 'a mapping'}"]
    found = schema_problems(params, schema)
    if found:  # the other checks assume a well-formed file
        return found
    return other_problems(params, root)


def message(found: list[str], source: str = "params.yaml") -> str:
    """The one message both tools print for bad values."""
    return (
        f"{source} has {len(found)} bad value(s) (checked against {SCHEMA_NAME}):\n  "
        + "\n  ".join(found)
        + f"\nFix them in {source} (or the --config override) and run again."
    )


def load_yaml(path: str | os.PathLike[str]) -> Any:
    import yaml

    return yaml.safe_load(Path(path).read_text())
