"""Paths, wildcards and code dependencies shared by several rules; they must match dvc.yaml."""

import re

# The fetch stage's record that data.raw holds the expected release (ingest depends on it).
RAW_RECORD = "data/raw/stage1_train.verified.json"
INTERIM_H5 = "data/interim/stage1_train.h5"
# The size is part of the name so that changing preprocess.size never reuses a stale file.
PROCESSED_H5 = f"data/processed/dsb2018_{config['preprocess']['size']}.h5"
SPLIT_JSON = "data/processed/split.json"
# One folder per (arch, seed) run: models/{arch}/seed{seed}, results/runs/{arch}/seed{seed}.
# aggregate depends on all of models/ and results/runs/ (DVC cannot list a
# variable number of files), so nothing else may be written there.
MODEL_DIR = "models/{arch}/seed{seed}"
RESULT_DIR = "results/runs/{arch}/seed{seed}"


wildcard_constraints:
    arch="|".join(re.escape(arch) for arch in config["runs"]["arch"]),
    seed=r"\d+",


# The package modules each stage's command imports, so that editing one reruns
# that stage and everything downstream (and nothing else). dvc.yaml lists the
# same files; tests/test_workflow_code_deps.py records the real imports of every
# stage and prints the correct lists when these are out of date.
CODE = {
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
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/ingest.py",
        "src/unetpp/commands/options.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/content.py",
        "src/unetpp/data/ingest.py",
        "src/unetpp/data/maskpng.py",
        "src/unetpp/data/parallel.py",
        "src/unetpp/data/pngdecode.py",
        "src/unetpp/data/raw.py",
        "src/unetpp/errors.py",
    ],
    "preprocess": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
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
        "src/unetpp/atomic.py",
        "src/unetpp/benchmarking/__init__.py",
        "src/unetpp/benchmarking/paths.py",
        "src/unetpp/benchmarking/train_steps.py",
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
        "src/unetpp/models/nested_unet.py",
        "src/unetpp/models/registry.py",
        "src/unetpp/models/unet.py",
        "src/unetpp/training/__init__.py",
        "src/unetpp/training/checkpoint.py",
        "src/unetpp/training/device.py",
        "src/unetpp/training/layout.py",
        "src/unetpp/training/loop.py",
        "src/unetpp/training/outputs.py",
        "src/unetpp/training/provenance.py",
        "src/unetpp/training/step.py",
        "src/unetpp/training/stopping.py",
    ],
    "predict": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
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
        "src/unetpp/models/nested_unet.py",
        "src/unetpp/models/registry.py",
        "src/unetpp/models/unet.py",
        "src/unetpp/training/__init__.py",
        "src/unetpp/training/device.py",
        "src/unetpp/training/step.py",
    ],
    "evaluate": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/evaluate.py",
        "src/unetpp/data/__init__.py",
        "src/unetpp/data/processed.py",
        "src/unetpp/errors.py",
        "src/unetpp/evaluation/__init__.py",
        "src/unetpp/evaluation/evaluate.py",
        "src/unetpp/metrics.py",
    ],
    "aggregate": [
        "src/unetpp/__init__.py",
        "src/unetpp/atomic.py",
        "src/unetpp/cli.py",
        "src/unetpp/commands/__init__.py",
        "src/unetpp/commands/aggregate.py",
        "src/unetpp/errors.py",
        "src/unetpp/evaluation/__init__.py",
        "src/unetpp/evaluation/aggregate.py",
        "src/unetpp/evaluation/compare.py",
        "src/unetpp/models/__init__.py",
        "src/unetpp/models/blocks.py",
        "src/unetpp/models/nested_unet.py",
        "src/unetpp/models/registry.py",
        "src/unetpp/models/unet.py",
    ],
}

# The project's one environment (with `--software-deployment-method conda`);
# relative to the rule files. Its `pip: -e .` installs this checkout.
CONDA_ENV = "../../environment.yml"
