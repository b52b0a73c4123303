# The variant table: every variant's aggregate side by side (val IoU at native size and at the variant's
# own size, Dice, epochs, training time; UNet++ - U-Net with its interval). dvc.yaml depends on the folder
# results/variants/ (DVC cannot list a variable number of files), which holds the aggregates and nothing else;
# the command reads every variant there (those of run_variants, and any run before and still there).
rule compare_variants:
    input:
        metrics=expand(rules.aggregate.output.metrics, variant=list(VARIANTS)),
        summaries=expand(rules.aggregate.output.summary, variant=list(VARIANTS)),
        curves=expand(rules.aggregate.output.curves, variant=list(VARIANTS)),
        code=CODE["compare_variants"],
    output:
        table=report(
            "results/variants.md",
            caption="../report/variants.rst",
            category="Results",
            subcategory="Variants",
        ),
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
        " --json {output.json} > {log} 2>&1"
