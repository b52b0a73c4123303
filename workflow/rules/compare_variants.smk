# The variant table: every variant's aggregate side by side (val IoU at native size and at the variant's
# own size, Dice, epochs, training time; UNet++ - U-Net with its interval). dvc.yaml depends on the folder
# results/variants/ (DVC cannot list a variable number of files), which holds the aggregates and nothing else;
# the command reads every variant there (those of run_variants, and any run before and still there).
rule compare_variants:
    input:
        # Every output of every variant's aggregate: dvc.yaml depends on their folder.
        metrics=expand(rules.aggregate.output.metrics, variant=list(VARIANTS)),
        summaries=expand(rules.aggregate.output.summary, variant=list(VARIANTS)),
        summaries_html=expand(
            rules.aggregate.output.summary_html, variant=list(VARIANTS)
        ),
        curves=expand(rules.aggregate.output.curves, variant=list(VARIANTS)),
        headlines=expand(rules.aggregate.output.headline, variant=list(VARIANTS)),
        headline_rows=expand(
            rules.aggregate.output.headline_rows, variant=list(VARIANTS)
        ),
        code=CODE["compare_variants"],
    output:
        # The report's landing text (workflow/report/workflow.rst) includes the HTML rendering.
        html=report(
            "results/variants.html",
            caption="../report/variants.rst",
            category="1. Results",
            subcategory="0. Variant table",
        ),
        table="results/variants.md",
        json="results/variants.json",
    log:
        "logs/compare_variants.log",
    benchmark:
        "logs/benchmarks/compare_variants.tsv"
    conda:
        CONDA_ENV
    params:
        variants_dir=[VARIANTS_ROOT],
    shell:
        "unetpp compare-variants --variants-dir {params.variants_dir} --out {output.table}"
        " --json {output.json} --html {output.html} > {log} 2>&1"
