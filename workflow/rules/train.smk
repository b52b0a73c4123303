rule train:
    input:
        data=PROCESSED_H5,
        split=SPLIT_JSON,
    output:
        model="models/{arch}/model.pt",
        history="models/{arch}/history.csv",
        summary="models/{arch}/train.json",
    log:
        "logs/train/{arch}.log",
    benchmark:
        "logs/benchmarks/train/{arch}.tsv"
    conda:
        CONDA_ENV
    threads: config["train"]["threads"]
    resources:
        # One GPU per training job: `--resources gpu=1` (default profile) runs
        # one training at a time; the SLURM executor asks for --gpus=1.
        gpu=1,
    params:
        out_dir="models/{arch}",
        epochs=config["train"]["epochs"],
        patience=config["train"]["patience"],
        lr=config["train"]["lr"],
        batch_size=config["train"]["batch_size"],
        seed=config["train"]["seed"],
        device=config["train"]["device"],
        precision=config["train"]["precision"],
    shell:
        "unetpp train --data {input.data} --split {input.split} --arch {wildcards.arch}"
        " --epochs {params.epochs} --patience {params.patience} --lr {params.lr}"
        " --batch-size {params.batch_size} --seed {params.seed} --device {params.device}"
        " --precision {params.precision} --num-threads {threads}"
        " --out {params.out_dir} > {log} 2>&1"
