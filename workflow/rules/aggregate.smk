# Every (arch, seed) run: expand() is arch-major, the order of `--arch` and `--seed`.
RUNS = {"arch": config["archs"], "seed": config["seeds"]}


rule aggregate:
    input:
        histories=expand(f"{MODEL_DIR}/history.csv", **RUNS),
        summaries=expand(f"{MODEL_DIR}/train.json", **RUNS),
        metrics=expand(f"{RESULT_DIR}/metrics.json", **RUNS),
        # Read for the paired UNet++ vs U-Net comparisons (unetpp.evaluation.compare).
        per_image=expand(f"{RESULT_DIR}/per_image.csv", **RUNS),
        code=CODE["aggregate"],
    output:
        metrics="results/metrics.json",
        summary="results/summary.md",
        curves="results/curves.png",
    log:
        "logs/aggregate.log",
    benchmark:
        "logs/benchmarks/aggregate.tsv"
    conda:
        CONDA_ENV
    params:
        arch_options=" ".join(f"--arch {arch}" for arch in config["archs"]),
        seed_options=" ".join(f"--seed {seed}" for seed in config["seeds"]),
    shell:
        "unetpp aggregate --models-dir models --results-dir results {params.arch_options}"
        " {params.seed_options} --out results > {log} 2>&1"
