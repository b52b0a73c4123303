"""What several rules share: the run folders, wildcards, code dependencies; they must match dvc.yaml.

Every other path is written once, in the `output:` of the producing rule; the
rules that read it take it from there (`rules.<name>.output.<key>`), so a rule
file is included after the rules it reads from (see the Snakefile).
(`snakemake --lint` takes any line with "rule", a space and a later colon for a rule,
and a file with rules and functions for a mixed one: the prose here avoids that.)
"""

import re

# One folder per (variant, arch, seed) run: train writes MODEL_DIR, predict and evaluate
# RESULT_DIR. A variant's aggregate reads every run below its two roots (dvc.yaml depends
# on the folders models/<variant>/ and results/<variant>/runs/, as DVC cannot list a
# variable number of files), so nothing else may be written there; compare_variants reads
# every aggregate below VARIANTS_ROOT (dvc.yaml: the folder results/variants/).
MODELS_ROOT = "models/{variant}"
RUNS_ROOT = "results/{variant}/runs"
MODEL_DIR = f"{MODELS_ROOT}/{{arch}}/seed{{seed}}"
RESULT_DIR = f"{RUNS_ROOT}/{{arch}}/seed{{seed}}"
VARIANTS_ROOT = "results/variants"
# The variants that run, in run_variants' order (DVC names their stages variant<index>), each
# {name, size, block, augment, batch_size, lr} as declared under `variants` (params.smk checked that
# run_variants lists aliases of them).
VARIANTS = {variant["name"]: variant for variant in config["run_variants"]}
# Every (variant, arch, seed) run: expand() is variant-major, then the order of `--arch` and `--seed`.
ARCH_SEEDS = {"arch": config["runs"]["arch"], "seed": config["runs"]["seed"]}
RUNS = {"variant": list(VARIANTS), **ARCH_SEEDS}
# The optional test sets (test.sets, [] by default): {name: raw test set}, in
# params.yaml's order (DVC names their stages predict_test@set<index>-variant<index>-<arch>-<seed>).
TEST_SETS = {test_set["name"]: test_set["raw"] for test_set in config["test"]["sets"]}


def variant_value(key: str):
    """A function of the wildcards: the value `key` of the job's variant (a params: value, so a change reruns it)."""

    def value(wildcards):
        return VARIANTS[wildcards.variant][key]

    return value


def processed_h5(wildcards) -> str:
    """The processed file of the job's variant size (one per distinct size, shared by the variants of that size)."""
    return rules.preprocess.output.h5.format(size=VARIANTS[wildcards.variant]["size"])


wildcard_constraints:
    variant="|".join(re.escape(name) for name in VARIANTS),
    arch="|".join(re.escape(arch) for arch in config["runs"]["arch"]),
    seed=r"\d+",
    size=r"\d+",
    # No test set: a pattern that matches no folder name.
    set="|".join(re.escape(name) for name in TEST_SETS) or r"(?!)",


# The package modules each stage's command imports, so that editing one reruns
# that stage and everything downstream (and nothing else). dvc.yaml lists the
# same files; tests/test_workflow_code_deps.py records the real imports of every
# stage and prints the correct lists when these are out of date.
CODE = {
    "check_params": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/check_params.py",
        "src/unetpp/errors.py",
        "src/unetpp/paramcheck.py",
    ],
    "fetch": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/fetch.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/content.py",
        "src/unetpp/data/fetch.py",
        "src/unetpp/data/raw.py",
        "src/unetpp/errors.py",
    ],
    "ingest": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/ingest.py",
        "src/unetpp/commands/options.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/content.py",
        "src/unetpp/data/ingest.py",
        "src/unetpp/data/parallel.py",
        "src/unetpp/data/pngdecode.py",
        "src/unetpp/data/raw.py",
        "src/unetpp/errors.py",
    ],
    "preprocess": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/options.py",
        "src/unetpp/commands/preprocess.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/parallel.py",
        "src/unetpp/data/preprocess.py",
        "src/unetpp/data/processed.py",
        "src/unetpp/errors.py",
    ],
    "split": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/split.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/split.py",
        "src/unetpp/errors.py",
    ],
    "train": [
        "src/unetpp/__init__.py",
        "src/unetpp/allocator.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/options.py",
        "src/unetpp/commands/train.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/processed.py",
        "src/unetpp/errors.py",
        "src/unetpp/losses.py",
        "src/unetpp/metrics.py",
        "src/unetpp/models/__init__.py",
        "src/unetpp/models/blocks.py",
        "src/unetpp/models/dropout.py",
        "src/unetpp/models/nested_unet.py",
        "src/unetpp/models/registry.py",
        "src/unetpp/models/unet.py",
        "src/unetpp/training/__init__.py",
        "src/unetpp/training/augment.py",
        "src/unetpp/training/checkpoint.py",
        "src/unetpp/training/config.py",
        "src/unetpp/training/cuda_graph.py",
        "src/unetpp/training/device.py",
        "src/unetpp/training/gpu_lease.py",
        "src/unetpp/training/layout.py",
        "src/unetpp/training/loop.py",
        "src/unetpp/training/optimizer.py",
        "src/unetpp/training/outputs.py",
        "src/unetpp/training/provenance.py",
        "src/unetpp/training/step.py",
        "src/unetpp/training/step_timing.py",
        "src/unetpp/training/stopping.py",
    ],
    "predict": [
        "src/unetpp/__init__.py",
        "src/unetpp/allocator.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/options.py",
        "src/unetpp/commands/predict.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/processed.py",
        "src/unetpp/errors.py",
        "src/unetpp/inference/__init__.py",
        "src/unetpp/inference/figures.py",
        "src/unetpp/inference/loading.py",
        "src/unetpp/inference/predict.py",
        "src/unetpp/inference/predictor.py",
        "src/unetpp/inference/runtime.py",
        "src/unetpp/losses.py",
        "src/unetpp/metrics.py",
        "src/unetpp/models/__init__.py",
        "src/unetpp/models/blocks.py",
        "src/unetpp/models/dropout.py",
        "src/unetpp/models/nested_unet.py",
        "src/unetpp/models/registry.py",
        "src/unetpp/models/unet.py",
        "src/unetpp/training/__init__.py",
        "src/unetpp/training/device.py",
        "src/unetpp/training/gpu_lease.py",
        "src/unetpp/training/step.py",
    ],
    "evaluate": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/evaluate.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/image_kind.py",
        "src/unetpp/data/parallel.py",
        "src/unetpp/data/preprocess.py",
        "src/unetpp/data/processed.py",
        "src/unetpp/errors.py",
        "src/unetpp/evaluation/__init__.py",
        "src/unetpp/evaluation/evaluate.py",
        "src/unetpp/evaluation/native.py",
        "src/unetpp/metrics.py",
    ],
    "aggregate": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/aggregate.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/image_kind.py",
        "src/unetpp/errors.py",
        "src/unetpp/evaluation/__init__.py",
        "src/unetpp/evaluation/aggregate.py",
        "src/unetpp/evaluation/compare.py",
        "src/unetpp/evaluation/summary_html.py",
    ],
    "compare_variants": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/compare_variants.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/image_kind.py",
        "src/unetpp/errors.py",
        "src/unetpp/evaluation/__init__.py",
        "src/unetpp/evaluation/aggregate.py",
        "src/unetpp/evaluation/compare.py",
        "src/unetpp/evaluation/summary_html.py",
        "src/unetpp/evaluation/variants.py",
    ],
    "predict_test": [
        "src/unetpp/__init__.py",
        "src/unetpp/allocator.py",
        "src/unetpp/atomic.py",
        "src/unetpp/choices.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/options.py",
        "src/unetpp/commands/predict_test.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/parallel.py",
        "src/unetpp/data/pngdecode.py",
        "src/unetpp/data/preprocess.py",
        "src/unetpp/data/processed.py",
        "src/unetpp/data/raw.py",
        "src/unetpp/errors.py",
        "src/unetpp/evaluation/__init__.py",
        "src/unetpp/evaluation/competition.py",
        "src/unetpp/evaluation/instances.py",
        "src/unetpp/evaluation/rle.py",
        "src/unetpp/evaluation/truth.py",
        "src/unetpp/inference/__init__.py",
        "src/unetpp/inference/downscale.py",
        "src/unetpp/inference/images.py",
        "src/unetpp/inference/loading.py",
        "src/unetpp/inference/predict_images.py",
        "src/unetpp/inference/predictor.py",
        "src/unetpp/inference/runtime.py",
        "src/unetpp/inference/test_set.py",
        "src/unetpp/losses.py",
        "src/unetpp/metrics.py",
        "src/unetpp/models/__init__.py",
        "src/unetpp/models/blocks.py",
        "src/unetpp/models/dropout.py",
        "src/unetpp/models/nested_unet.py",
        "src/unetpp/models/registry.py",
        "src/unetpp/models/unet.py",
        "src/unetpp/training/__init__.py",
        "src/unetpp/training/device.py",
        "src/unetpp/training/gpu_lease.py",
        "src/unetpp/training/step.py",
    ],
}


# Named relative to the Snakefile's folder (from_workflow, params.smk): `../src/...` in the demo's .test/.
CODE = {stage: [from_workflow(path) for path in paths] for stage, paths in CODE.items()}

# The project's one environment (with `--software-deployment-method conda`);
# relative to the files of the rules. Its `pip: -e .` installs this checkout.
CONDA_ENV = "../../environment.yml"
