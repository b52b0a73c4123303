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
        # The report's first category: the summary table, rendered (the report previews HTML, not markdown).
        summary_html=report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="1. Results",
            subcategory="1. Summary table",
        ),
        curves=report(
            "results/curves.png",
            caption="../report/curves.rst",
            category="1. Results",
            subcategory="2. Training curves",
        ),
        summary="results/summary.md",
        # Every figure and comparison (dvc.yaml: a plain output, committed).
        metrics="results/metrics.json",
        # The DVC metric: the figures people compare, short keys (dvc metrics diff, dvc exp show).
        headline="results/headline.json",
        # The same, one file per arch: `dvc metrics show results/headline` prints a row per arch.
        headline_rows=directory("results/headline"),
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
