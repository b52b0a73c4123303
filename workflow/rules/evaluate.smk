rule evaluate:
    input:
        predictions=rules.predict.output.predictions,
        data=processed_h5,
        split=rules.split.output.json,
        # The native-size masks: every variant is also scored at native size (comparable across sizes).
        interim=rules.ingest.output.h5,
        code=CODE["evaluate"],
    output:
        metrics=f"{RESULT_DIR}/metrics.json",
        per_image=f"{RESULT_DIR}/per_image.csv",
    log:
        "logs/evaluate/{variant}/{arch}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/evaluate/{variant}/{arch}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    params:
        # The subset the predictions cover: the same key as the predict rule's.
        subset=config["predict"]["subset"],
        batch_size=config["evaluate"]["batch_size"],
    shell:
        "unetpp evaluate --pred {input.predictions} --data {input.data} --split {input.split}"
        " --subset {params.subset} --batch-size {params.batch_size} --interim {input.interim}"
        " --out {output.metrics} --per-image {output.per_image} > {log} 2>&1"
