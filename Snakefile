"""U-Net vs UNet++ on DSB2018: the whole pipeline, one rule per `unetpp` stage.

Run `snakemake --cores 8 --resources gpu=1` (or just `snakemake` with the
default profile). Every value comes from params.yaml through `params:`, so
Snakemake reruns exactly the jobs whose values changed; dvc.yaml declares the
same stages (tests/test_workflow_parity.py keeps the two files in step).
Each path is written once, in the rule that writes it (the per-run folders in
workflow/rules/common.smk); a rule reads another's outputs as
`rules.<name>.output.<key>`, so a rule file is included after those it reads.
"""


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/params.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/check_params.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/compare_variants.smk"
include: "workflow/rules/predict_test.smk"
include: "workflow/rules/record.smk"


rule all:
    default_target: True
    input:
        # Each variant's aggregate (its inputs) and the table of all variants.
        rules.compare_variants.output,
        # The test-set stage: every test set x run; nothing while test.sets is [].
        expand(rules.predict_test.output.out, set=list(TEST_SETS), **RUNS),


onsuccess:
    record_in_dvc(workflow, "logs/dvc_commit.log", config)
    where_results_are(workflow)
