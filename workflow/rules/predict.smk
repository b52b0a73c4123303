rule predict:
    input:
        model="models/{arch}/model.pt",
        data=PROCESSED_H5,
        split=SPLIT_JSON,
    output:
        predictions="results/{arch}/predictions.h5",
        figure="results/{arch}/samples.png",
    log:
        "logs/predict/{arch}.log",
    benchmark:
        "logs/benchmarks/predict/{arch}.tsv"
    conda:
        CONDA_ENV
    params:
        subset=config["predict"]["subset"],
        batch_size=config["predict"]["batch_size"],
        device=config["predict"]["device"],
        precision=config["predict"]["precision"],
        inference_output=config["predict"]["inference_output"],
    shell:
        "unetpp predict --model {input.model} --data {input.data} --split {input.split}"
        " --subset {params.subset} --batch-size {params.batch_size} --device {params.device}"
        " --precision {params.precision} --inference-output {params.inference_output}"
        " --out {output.predictions} --figure {output.figure} > {log} 2>&1"
