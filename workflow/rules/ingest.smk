rule ingest:
    input:
        raw=config["data"]["raw"],
        record=RAW_RECORD,
        code=CODE["ingest"],
    output:
        h5=INTERIM_H5,
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
