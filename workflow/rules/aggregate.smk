rule aggregate:
    # Every output of every run: dvc.yaml depends on the folders models/ and
    # results/runs/ (DVC cannot list a variable number of files), so both tools
    # rerun aggregate on the same changes (tests/test_workflow_parity.py).
    input:
        models=expand(rules.train.output.model, **RUNS),
        histories=expand(rules.train.output.history, **RUNS),
        summaries=expand(rules.train.output.summary, **RUNS),
        predictions=expand(rules.predict.output.predictions, **RUNS),
        samples=expand(rules.predict.output.figure, **RUNS),
        metrics=expand(rules.evaluate.output.metrics, **RUNS),
        # Read for the paired UNet++ vs U-Net comparisons (unetpp.evaluation.compare).
        per_image=expand(rules.evaluate.output.per_image, **RUNS),
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
        # MODELS_ROOT and RUNS_ROOT (common.smk) hold every run and nothing else.
        f"unetpp aggregate --models-dir {MODELS_ROOT} --results-dir {RUNS_ROOT} {{params.run_options}}"
        " --content-sha256 {params.content_sha256} --out results > {log} 2>&1"
