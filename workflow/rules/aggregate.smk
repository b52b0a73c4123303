rule aggregate:
    # One per variant: every output of its runs. dvc.yaml depends on the folders
    # models/<variant>/ and results/<variant>/runs/ (DVC cannot list a variable number
    # of files), so both tools rerun a variant's aggregate on the same changes
    # (tests/test_workflow_parity.py).
    input:
        models=expand(rules.train.output.model, **ARCH_SEEDS, allow_missing=True),
        histories=expand(rules.train.output.history, **ARCH_SEEDS, allow_missing=True),
        summaries=expand(rules.train.output.summary, **ARCH_SEEDS, allow_missing=True),
        predictions=expand(
            rules.predict.output.predictions, **ARCH_SEEDS, allow_missing=True
        ),
        samples=expand(rules.predict.output.figure, **ARCH_SEEDS, allow_missing=True),
        metrics=expand(rules.evaluate.output.metrics, **ARCH_SEEDS, allow_missing=True),
        # Read for the paired UNet++ vs U-Net comparisons (unetpp.evaluation.compare).
        per_image=expand(
            rules.evaluate.output.per_image, **ARCH_SEEDS, allow_missing=True
        ),
        code=CODE["aggregate"],
    output:
        # The report's first category: each variant's summary table, rendered (the report previews HTML, not markdown).
        summary_html=report(
            f"{VARIANTS_ROOT}/{{variant}}/summary.html",
            caption="../report/summary.rst",
            category="1. Results",
            subcategory="{variant}: summary table",
        ),
        curves=report(
            f"{VARIANTS_ROOT}/{{variant}}/curves.png",
            caption="../report/curves.rst",
            category="1. Results",
            subcategory="{variant}: training curves",
        ),
        summary=f"{VARIANTS_ROOT}/{{variant}}/summary.md",
        # Every figure and comparison (dvc.yaml: a plain output, committed).
        metrics=f"{VARIANTS_ROOT}/{{variant}}/metrics.json",
        # The DVC metric: the figures people compare, short keys (dvc metrics diff, dvc exp show).
        headline=f"{VARIANTS_ROOT}/{{variant}}/headline.json",
        # The same, one file per arch: `dvc metrics show results/variants/reference/headline` prints a row per arch.
        headline_rows=directory(f"{VARIANTS_ROOT}/{{variant}}/headline"),
    log:
        "logs/aggregate/{variant}.log",
    benchmark:
        "logs/benchmarks/aggregate/{variant}.tsv"
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
        models_dir=lambda wildcards: MODELS_ROOT.format(variant=wildcards.variant),
        runs_dir=lambda wildcards: RUNS_ROOT.format(variant=wildcards.variant),
        out_dir=lambda wildcards: f"{VARIANTS_ROOT}/{wildcards.variant}",
    shell:
        # The variant's MODELS_ROOT and RUNS_ROOT (common.smk) hold its runs and nothing else.
        "unetpp aggregate --models-dir {params.models_dir} --results-dir {params.runs_dir} {params.run_options}"
        " --content-sha256 {params.content_sha256} --out {params.out_dir} > {log} 2>&1"
