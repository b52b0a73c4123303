# Every (arch, seed) run: expand() is arch-major, the order of `--arch` and `--seed`.
RUNS = {"arch": config["runs"]["arch"], "seed": config["runs"]["seed"]}


rule aggregate:
    # Every output of every run: dvc.yaml depends on the folders models/ and
    # results/runs/ (DVC cannot list a variable number of files), so both tools
    # rerun aggregate on the same changes (tests/test_workflow_parity.py).
    input:
        models=expand(f"{MODEL_DIR}/model.pt", **RUNS),
        histories=expand(f"{MODEL_DIR}/history.csv", **RUNS),
        summaries=expand(f"{MODEL_DIR}/train.json", **RUNS),
        predictions=expand(f"{RESULT_DIR}/predictions.h5", **RUNS),
        samples=expand(f"{RESULT_DIR}/samples.png", **RUNS),
        metrics=expand(f"{RESULT_DIR}/metrics.json", **RUNS),
        # Read for the paired UNet++ vs U-Net comparisons (unetpp.evaluation.compare).
        per_image=expand(f"{RESULT_DIR}/per_image.csv", **RUNS),
        code=CODE["aggregate"],
    output:
        metrics=report(
            "results/metrics.json",
            caption="../report/metrics.rst",
            category="Results",
            subcategory="Statistics",
        ),
        summary=report(
            "results/summary.md",
            caption="../report/summary.rst",
            category="Results",
            subcategory="Summary",
        ),
        curves=report(
            "results/curves.png",
            caption="../report/curves.rst",
            category="Results",
            subcategory="Training curves",
        ),
    log:
        "logs/aggregate.log",
    benchmark:
        "logs/benchmarks/aggregate.tsv"
    conda:
        CONDA_ENV
    params:
        # `--arch A ... --seed N ...`: dvc.yaml's `${runs}` with parsing.list append.
        run_options=" ".join(
            f"--{key} {value}"
            for key, values in config["runs"].items()
            for value in values
        ),
        # The digest fetch checked the data against: the title and the published
        # column appear only when it is the DSB2018 stage1_train release's.
        content_sha256=config["data"]["content_sha256"],
    shell:
        "unetpp aggregate --models-dir models --results-dir results/runs {params.run_options}"
        " --content-sha256 {params.content_sha256} --out results > {log} 2>&1"
