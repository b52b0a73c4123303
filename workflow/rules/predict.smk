rule predict:
    input:
        model=rules.train.output.model,
        data=processed_h5,
        split=rules.split.output.json,
        code=CODE["predict"],
    output:
        predictions=f"{RESULT_DIR}/predictions.h5",
        figure=report(
            f"{RESULT_DIR}/samples.png",
            caption="../report/samples.rst",
            category="Samples",
            subcategory="{variant}: {arch}",
            labels={"variant": "{variant}", "arch": "{arch}", "seed": "{seed}"},
        ),
    log:
        "logs/predict/{variant}/{arch}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/predict/{variant}/{arch}/seed{seed}.tsv"
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
