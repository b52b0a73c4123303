# data.raw is the user's (a file or link they put there) or, on a fresh clone,
# this rule's download. It is declared an output only while nothing is there at
# parse time, so Snakemake can never delete or re-create a user's file
# (--forceall, --forcerun, an incomplete run) and its inputs and rerun record
# stay the same before and after the download. The record (output `record`) is
# what ingest depends on; ingest refuses data whose digest is no longer the recorded one.
import os

from snakemake.exceptions import WorkflowError

RAW = config["data"]["raw"]
if os.path.islink(RAW) and not os.path.exists(RAW):
    raise WorkflowError(
        f"data.raw (params.yaml) is {RAW}, a symlink to {os.readlink(RAW)}, which does not exist. "
        f"Fix the link (ln -sfn /absolute/path/to/stage1_train.zip {RAW}), point data.raw at your "
        "copy of the data, or remove the link and the fetch stage downloads the data from data.url; "
        'see "Getting the data" in README.md. No data at hand? `unetpp synth --n 24 --out demo.zip` '
        "writes a small synthetic set in the same layout (use it with data.raw: demo.zip and "
        "data.content_sha256: any)."
    )
FETCH_DOWNLOADS = {} if os.path.lexists(RAW) else {"raw": RAW}


rule fetch:
    input:
        # params.yaml checked first (DVC stops there on a bad value).
        checked=rules.check_params.output.record,
        code=CODE["fetch"],
    output:
        **FETCH_DOWNLOADS,
        record="data/raw/stage1_train.verified.json",
    log:
        "logs/fetch.log",
    benchmark:
        "logs/benchmarks/fetch.tsv"
    # Downloads run where Snakemake runs (a cluster's login node has the network).
    localrule: True
    conda:
        CONDA_ENV
    params:
        # A one-item list: rendered as the path, recorded for the params rerun
        # trigger, and not taken by --lint for a hard-coded prefix of the output
        # it is on a fresh clone.
        raw=[RAW],
        url=config["data"]["url"],
        content_sha256=config["data"]["content_sha256"],
        images=config["data"]["images"],
        masks=config["data"]["masks"],
    shell:
        "unetpp fetch --raw {params.raw} --url {params.url} --content-sha256 {params.content_sha256}"
        " --images {params.images} --masks {params.masks} --out {output.record} > {log} 2>&1"
