rule preprocess:
    input:
        h5=rules.ingest.output.h5,
        code=CODE["preprocess"],
    output:
        # The size is part of the name so that changing preprocess.size never reuses a stale file.
        h5=f"data/processed/dsb2018_{config['preprocess']['size']}.h5",
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
