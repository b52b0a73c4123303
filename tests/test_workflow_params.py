"""Bad params.yaml values and missing data are explained before any job runs.

The Snakefile checks params.yaml (and --config overrides) against
workflow/schemas/params.schema.yaml with `snakemake.utils.validate` and reports
every bad value on its own line; `unetpp check-params` (DVC's first stage) gives
the same lines; a data.raw symlink to nothing stops the workflow with what to do.
Each case runs `snakemake -n` on a copy of the workflow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from workflow_helpers import BIN, SNAKEMAKE, copy_workflow, run

UNETPP = BIN / "unetpp"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    project = copy_workflow(tmp_path / "project")
    raw = project / "data/raw/stage1_train.zip"
    raw.parent.mkdir(parents=True)
    raw.touch()
    return project


def edit_params(project: Path, **changes: object) -> None:
    """Set dotted keys (`variants__reference__lr=-1` is variants.reference.lr); the value None deletes the key.

    The file is written back by yaml.safe_dump: run_variants' entries stay aliases of their variants (`&id001`),
    and a variant that merged the reference keeps its own copy of the reference's values.
    """
    params = yaml.safe_load((project / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = params
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dry_run(project: Path, *extra: str) -> tuple[int, str]:
    result = run([SNAKEMAKE, "--dry-run", *extra], cwd=project, check=False)
    return result.returncode, result.stdout + result.stderr


def check_params(project: Path) -> tuple[int, str]:
    """`unetpp check-params` on the project's params.yaml, as DVC's check_params stage runs it."""
    result = run(
        [UNETPP, "check-params", "--params", "params.yaml", "--schema", "workflow/schemas/params.schema.yaml",
         "--out", "data/params.checked.json"],
        cwd=project, check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_valid_params_pass(project: Path) -> None:
    code, output = dry_run(project)
    assert code == 0, output
    assert "bad value" not in output


# (dotted key, bad value, what the line must say)
BAD_VALUES = [
    # The per-variant values (size, block, augment, batch_size, lr) live under variants.
    ("variants__reference__lr", -1, "variants.reference.lr: -1 is not valid; it must be the learning rate, a number > 0"),
    ("variants__reference__size", 100, "variants.reference.size: 100 is not valid; it must be the square side in pixels, a multiple of 16"),
    ("variants__reference__batch_size", 0, "variants.reference.batch_size: 0 is not valid; it must be images per training batch"),
    ("variants__augment__augment", "rotate", "variants.augment.augment: 'rotate' is not valid; it must be one of none, flips, flips_colour"),
    ("variants__authors__block", "resnet", "variants.authors.block: 'resnet' is not valid; it must be one of vgg (the reference's), authors"),
    # Where they were before the variants: refused with where they went (a value left there would be ignored).
    ("train__lr", 0.001, "train.lr: 0.001 is not read here any more; it must be set per variant, as variants.<name>.lr (e.g. variants.reference.lr"),
    ("train__batch_size", 8, "train.batch_size: 8 is not read here any more; it must be set per variant, as variants.<name>.batch_size"),
    ("preprocess__size", 192, "preprocess.size: 192 is not read here any more; it must be set per variant, as variants.<name>.size"),
    ("train__epochs", "many", "train.epochs: 'many' is not valid; it must be the maximum number of epochs"),
    ("train__selection_metric", "mean", "train.selection_metric: 'mean' is not valid; it must be one of per_image, pooled, batch_pooled"),
    ("train__layout", "NCHW", "train.layout: 'NCHW' is not valid; it must be one of auto, channels_last, nchw"),
    ("split__val_fraction", 1.5, "split.val_fraction: 1.5 is not valid; it must be the share of images for validation, a number in (0, 1)"),
    ("runs__arch", [], "runs.arch: [] is not valid; it must be a non-empty list of distinct architectures"),
    ("runs__arch", ["unet", "resnet"], "runs.arch: 'resnet' is not valid; it must be a non-empty list of distinct architectures from unet, nested_unet, nested_unet_ds"),
    ("runs__seed", [0, "one"], "runs.seed: 'one' is not valid; it must be a non-empty list of distinct training seeds, integers >= 0"),
    ("runs__seed", [], "runs.seed: [] is not valid; it must be a non-empty list of distinct training seeds"),
    ("data__content_sha256", "abc", "data.content_sha256: 'abc' is not valid; it must be 64 lowercase hex digits"),
    ("evaluate__batch_size", None, "evaluate.batch_size: missing; it must be images per batch of the batch-pooled IoU"),
    # The test-set stage's section (tests/test_workflow_test_sets.py runs the stage).
    ("test", None, "test: missing; it must be the test-set stage's section: sets ([] for none)"),
    ("test__sets", "data/raw/stage1_test_images.zip", "test.sets: 'data/raw/stage1_test_images.zip' is not valid; it must be a list of test sets, each `{name: NAME, raw: PATH}`"),
    ("test__sets", [{"name": "runs", "raw": "t.zip"}], "test.sets.name: 'runs' is not valid; it must be the set's folder under results/, letters, digits, _ and - (not `runs`"),
    ("test__sets", [{"name": "stage1/test", "raw": "t.zip"}], "test.sets.name: 'stage1/test' is not valid; it must be the set's folder under results/"),
    ("test__sets", [{"name": "stage1_test"}], "test.sets.0.raw: missing; it must be the path of the test set, a zip or folder in the Kaggle layout"),
    ("test__instances", "ws", "test.instances: 'ws' is not valid; it must be one of cc, watershed"),
    ("test__min_distance", 0, "test.min_distance: 0 is not valid; it must be the least distance in pixels between two nucleus centres"),
    ("test__min_size", -1, "test.min_size: -1 is not valid; it must be the smallest object kept in pixels, an integer >= 0"),
    ("test__mode", "crop", "test.mode: 'crop' is not valid; it must be one of resize, pad"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_a_bad_value_is_named_with_what_it_must_be(project: Path, key: str, value: object, message: str) -> None:
    edit_params(project, **{key: value})
    code, output = dry_run(project)
    assert code != 0
    assert "params.yaml has 1 bad value(s)" in output, output
    assert message in output, output
    assert "Traceback" not in output
    # DVC's first stage says the same.
    code, output = check_params(project)
    assert code != 0
    assert "params.yaml has 1 bad value(s)" in output, output
    assert message in output, output
    assert "Traceback" not in output
    assert not (project / "data/params.checked.json").exists()


def test_every_bad_value_gets_its_own_line(project: Path) -> None:
    edit_params(
        project, variants__reference__lr=0, train__layout="x", variants__reference__size=95, runs__arch=["unet", "unet"]
    )
    expected = ["runs.arch", "train.layout", "variants.reference.lr", "variants.reference.size"]
    # A bad value of a variant is named once, under variants (run_variants holds an alias of it).
    for code, output in (dry_run(project), check_params(project)):
        assert code != 0
        assert "params.yaml has 4 bad value(s)" in output, output
        lines = [line.strip() for line in output.splitlines() if " is not valid; it must be " in line]
        assert [line.split(":")[0] for line in lines] == expected, output


def test_config_overrides_are_checked_as_params_yaml_values(project: Path) -> None:
    # --config hands nested values over as strings: a good number passes, a bad one is named.
    code, output = dry_run(project, "--config", 'variants={"reference": {"lr": 0.002}}')
    assert code == 0 and "--lr 0.002 " in output, output
    code, output = dry_run(project, "--config", 'variants={"reference": {"lr": -0.002}}')
    assert code != 0 and "variants.reference.lr: -0.002 is not valid" in output, output
    # The old place of a per-variant value is refused, not ignored.
    code, output = dry_run(project, "--config", 'train={"lr": 0.002}')
    assert code != 0 and "train.lr: 0.002 is not read here any more" in output, output
    # In lists too: Snakemake hands `[0, 1]` over as ['0', '1'].
    code, output = dry_run(project, "--config", 'runs={"arch": ["unet"], "seed": [0, 1]}')
    assert code == 0 and "models/reference/unet/seed1/model.pt" in output, output
    code, output = dry_run(project, "--config", 'runs={"arch": ["unet"], "seed": [0, -1]}')
    assert code != 0 and "runs.seed: -1 is not valid" in output, output


def test_a_dangling_data_link_says_what_to_do(project: Path) -> None:
    raw = project / "data/raw/stage1_train.zip"
    raw.unlink()
    raw.symlink_to(project / "moved/stage1_train.zip")
    code, output = dry_run(project)
    assert code != 0
    assert "MissingInputException" not in output
    message = " ".join(output.split())
    assert f"data.raw (params.yaml) is data/raw/stage1_train.zip, a symlink to {project}/moved/stage1_train.zip, which does not exist" in message
    for advice in ('"Getting the data" in README.md', "unetpp synth --n 24 --out demo.zip", "ln -sfn", "data.content_sha256: any"):
        assert advice in message, advice


def test_a_test_set_plans_one_job_per_run(project: Path) -> None:
    (project / "data/raw/stage1_test_images.zip").touch()
    edit_params(project, test__sets=[{"name": "stage1_test", "raw": "data/raw/stage1_test_images.zip"}])
    code, output = dry_run(project)
    assert code == 0, output
    # One per run of the reference variant (3 archs, seed 0), in results/<variant>/<set>/<arch>/seed<seed>/.
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", output, flags=re.MULTILINE))
    assert counts.get("predict_test") == "3", output
    for arch in ("unet", "nested_unet", "nested_unet_ds"):
        assert f"results/reference/stage1_test/{arch}/seed0" in output, arch


def test_two_test_sets_with_one_name_are_refused(project: Path) -> None:
    (project / "a.zip").touch()
    edit_params(project, test__sets=[{"name": "stage1_test", "raw": "a.zip"}, {"name": "stage1_test", "raw": "a.zip"}])
    code, output = dry_run(project)
    assert code != 0
    assert "test.sets: the name(s) stage1_test appear more than once; each set needs its own name" in output, output


def test_a_missing_test_set_says_what_to_do(project: Path) -> None:
    (project / "data/raw/stage1_test_images.zip").symlink_to(project / "moved.zip")
    edit_params(project, test__sets=[{"name": "stage1_test", "raw": "data/raw/stage1_test_images.zip"}])
    code, output = dry_run(project)
    assert code != 0
    assert "MissingInputException" not in output
    message = " ".join(output.split())
    assert (
        "test.sets[0].raw (params.yaml, test set stage1_test) is data/raw/stage1_test_images.zip, which does not "
        f"exist (a symlink to {project}/moved.zip)"
    ) in message, message
    for advice in ("ln -sfn", "test.sets: [] turns the stage off", '"Test sets" in README.md'):
        assert advice in message, advice


def test_no_data_plans_the_download(project: Path) -> None:
    (project / "data/raw/stage1_train.zip").unlink()
    code, output = dry_run(project)
    assert code == 0, output
    assert "rule fetch:" in output or "localrule fetch:" in output
