"""Paths shared by several rules; they must match the paths in dvc.yaml."""

import re

INTERIM_H5 = "data/interim/stage1_train.h5"
# The size is part of the name so that changing preprocess.size never reuses a stale file.
PROCESSED_H5 = f"data/processed/dsb2018_{config['preprocess']['size']}.h5"
SPLIT_JSON = "data/processed/split.json"


wildcard_constraints:
    arch="|".join(re.escape(arch) for arch in config["archs"]),


# The project's one environment (with `--software-deployment-method conda`);
# relative to the rule files. Its `pip: -e .` installs this checkout.
CONDA_ENV = "../../environment.yml"
