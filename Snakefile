# laserflow: LASER (layer-selective rank reduction) reproduction workflow.
# data -> models -> sweep -> select -> report; all logic lives in src/laserflow.


# config.yaml is the default (the offline demo); a --configfile replaces it instead of merging.
if not config:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/sweep.smk"
include: "rules/select.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        table=TABLE1_FILES,
        figures=all_sweep_figures(),
