rule evaluate:
    input:
        predictions="results/{arch}/seed{seed}/predictions.h5",
        data=PROCESSED_H5,
        split=SPLIT_JSON,
        code=CODE["evaluate"],
    output:
        metrics="results/{arch}/seed{seed}/metrics.json",
        per_image="results/{arch}/seed{seed}/per_image.csv",
    log:
        "logs/evaluate/{arch}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/evaluate/{arch}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    params:
        # The subset the predictions cover: the same key as the predict rule's.
        subset=config["predict"]["subset"],
        batch_size=config["evaluate"]["batch_size"],
    shell:
        "unetpp evaluate --pred {input.predictions} --data {input.data} --split {input.split}"
        " --subset {params.subset} --batch-size {params.batch_size}"
        " --out {output.metrics} --per-image {output.per_image} > {log} 2>&1"
