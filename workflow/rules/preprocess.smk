rule preprocess:
    input:
        h5=INTERIM_H5,
        code=CODE["preprocess"],
    output:
        h5=PROCESSED_H5,
    log:
        "logs/preprocess.log",
    benchmark:
        "logs/benchmarks/preprocess.tsv"
    conda:
        CONDA_ENV
    threads: config["preprocess"]["workers"]
    params:
        size=config["preprocess"]["size"],
    shell:
        "unetpp preprocess --in {input.h5} --size {params.size} --workers {threads} --out {output.h5} > {log} 2>&1"
