# The test-set stage, off by default: one job per test set of `test.sets` in
# params.yaml (none while it is []) and trained (variant, arch, seed) model. Each reads a
# raw test set in the Kaggle layout (zip or folder, masks optional) and writes
# results/<variant>/<set>/<arch>/seed<seed>/: union masks and 16-bit instance label maps
# at native size, submission.csv, predict_test.json (and, where the set has
# masks, per_image.csv and scores.json). dvc.yaml's predict_test is the same
# stage as a matrix over test.sets x run_variants x runs (an empty list: no stage).
import os

from snakemake.exceptions import WorkflowError

for _index, (_name, _raw) in enumerate(TEST_SETS.items()):
    if not os.path.exists(_raw):
        raise WorkflowError(
            f"test.sets[{_index}].raw (params.yaml, test set {_name}) is {_raw}, which does not exist"
            + (f" (a symlink to {os.readlink(_raw)})" if os.path.islink(_raw) else "")
            + ". Put the test set there (a zip or folder in the Kaggle layout, e.g. "
            "ln -sfn /absolute/path/to/stage1_test_images.zip data/raw/stage1_test_images.zip), "
            "point raw at it, or remove the set from test.sets (test.sets: [] turns the stage off); "
            'see "Test sets" in README.md.'
        )


rule predict_test:
    input:
        # The raw test set named by the `set` wildcard (test.sets in params.yaml).
        raw=lambda wildcards: TEST_SETS[wildcards.set],
        model=rules.train.output.model,
        code=CODE["predict_test"],
    output:
        # One folder, replaced as a whole by the command (masks/, labels/,
        # submission.csv, ...); results/<variant>/<set>/ lies beside results/<variant>/runs/, never in it.
        out=directory("results/{variant}/{set}/{arch}/seed{seed}"),
    log:
        "logs/predict_test/{variant}/{set}/{arch}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/predict_test/{variant}/{set}/{arch}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    params:
        instances=config["test"]["instances"],
        min_distance=config["test"]["min_distance"],
        min_size=config["test"]["min_size"],
        mode=config["test"]["mode"],
        # The model is run as the predict stage runs it on the validation images.
        device=config["predict"]["device"],
        precision=config["predict"]["precision"],
        inference_output=config["predict"]["inference_output"],
    shell:
        "unetpp predict-test --raw {input.raw} --model {input.model} --out {output.out}"
        " --instances {params.instances} --min-distance {params.min_distance}"
        " --min-size {params.min_size} --mode {params.mode} --device {params.device}"
        " --precision {params.precision} --inference-output {params.inference_output}"
        " > {log} 2>&1"
