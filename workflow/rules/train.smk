rule train:
    input:
        # The processed file of the variant's size.
        data=processed_h5,
        split=rules.split.output.json,
        code=CODE["train"],
    output:
        model=f"{MODEL_DIR}/model.pt",
        history=f"{MODEL_DIR}/history.csv",
        summary=f"{MODEL_DIR}/train.json",
    log:
        "logs/train/{variant}/{arch}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{variant}/{arch}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    threads: config["train"]["threads"]
    resources:
        # One GPU per training job: `--resources gpu=1` (default profile) runs
        # one training at a time; the SLURM executor asks for --gpus=1.
        gpu=1,
    params:
        out_dir=MODEL_DIR,
        epochs=config["train"]["epochs"],
        patience=config["train"]["patience"],
        # The variant's values: functions of the wildcards, recorded per job (a change to one variant
        # reruns only its jobs).
        lr=variant_value("lr"),
        batch_size=variant_value("batch_size"),
        block=variant_value("block"),
        augment=variant_value("augment"),
        device=config["train"]["device"],
        precision=config["train"]["precision"],
        selection_metric=config["train"]["selection_metric"],
        layout=config["train"]["layout"],
    shell:
        "unetpp train --data {input.data} --split {input.split} --arch {wildcards.arch}"
        " --epochs {params.epochs} --patience {params.patience} --lr {params.lr}"
        " --batch-size {params.batch_size} --seed {wildcards.seed} --device {params.device}"
        " --precision {params.precision} --selection-metric {params.selection_metric}"
        " --layout {params.layout} --num-threads {threads} --block {params.block} --augment {params.augment}"
        " --out {params.out_dir} > {log} 2>&1"
