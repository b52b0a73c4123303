# One split for every variant: it reads only the ids (the same, sorted, in the interim file and in every
# processed one), so it depends on no size.
rule split:
    input:
        h5=rules.ingest.output.h5,
        code=CODE["split"],
    output:
        json="data/processed/split.json",
    log:
        "logs/split.log",
    benchmark:
        "logs/benchmarks/split.tsv"
    conda:
        CONDA_ENV
    params:
        val_fraction=config["split"]["val_fraction"],
        test_fraction=config["split"]["test_fraction"],
        seed=config["split"]["seed"],
    shell:
        "unetpp split --in {input.h5} --val-fraction {params.val_fraction}"
        " --test-fraction {params.test_fraction} --seed {params.seed}"
        " --out {output.json} > {log} 2>&1"
