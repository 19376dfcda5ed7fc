# laserflow: LASER (layer-selective rank reduction) reproduction workflow.
# data -> models -> sweep -> select -> report; all logic lives in src/laserflow.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/sweep.smk"
include: "rules/select.smk"
include: "rules/report.smk"


rule all:
    input:
        table=TABLE1_FILES,
        figures=all_sweep_figures(),
    default_target: True
