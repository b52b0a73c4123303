# One job per distinct size of the variants that run (preprocess.sizes; params.smk checked that they
# are exactly those): variants that change only training share the reference's file.
rule preprocess:
    input:
        h5=rules.ingest.output.h5,
        code=CODE["preprocess"],
    output:
        # The size is part of the name, so each size has its own file and none is ever stale.
        h5="data/processed/dsb2018_{size}.h5",
    log:
        "logs/preprocess/{size}.log",
    benchmark:
        "logs/benchmarks/preprocess/{size}.tsv"
    conda:
        CONDA_ENV
    threads: config["preprocess"]["workers"]
    shell:
        "unetpp preprocess --in {input.h5} --size {wildcards.size} --workers {threads} --out {output.h5} > {log} 2>&1"
