rule ingest:
    input:
        # data.raw (fetch.smk): the user's, or fetch's download on a fresh clone.
        raw=RAW,
        record=rules.fetch.output.record,
        code=CODE["ingest"],
    output:
        h5="data/interim/stage1_train.h5",
    log:
        "logs/ingest.log",
    benchmark:
        "logs/benchmarks/ingest.tsv"
    conda:
        CONDA_ENV
    threads: config["data"]["workers"]
    shell:
        "unetpp ingest --raw {input.raw} --verified {input.record} --workers {threads}"
        " --out {output.h5} > {log} 2>&1"
