# params.yaml against its schema, as a job: the same stage as dvc.yaml's first,
# where it stops `dvc repro` on a bad value before any stage removes its outputs.
# Snakemake has already checked the params while parsing (params.smk, the same
# message), so this job depends on no value: it runs when its record is missing
# or its code or schema changed, and a params edit reruns only the jobs that use
# the edited value. DVC's stage tracks every value of params.yaml instead.
rule check_params:
    input:
        schema=from_workflow("workflow/schemas/params.schema.yaml"),
        code=CODE["check_params"],
    output:
        record="data/params.checked.json",
    log:
        "logs/check_params.log",
    benchmark:
        "logs/benchmarks/check_params.tsv"
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "unetpp check-params --params params.yaml --schema {input.schema}"
        " --out {output.record} > {log} 2>&1"
