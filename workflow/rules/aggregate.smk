rule aggregate:
    input:
        histories=expand("models/{arch}/history.csv", arch=config["archs"]),
        summaries=expand("models/{arch}/train.json", arch=config["archs"]),
        metrics=expand("results/{arch}/metrics.json", arch=config["archs"]),
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
    shell:
        "unetpp aggregate --models-dir models --results-dir results {params.arch_options}"
        " --out results > {log} 2>&1"
