# The report of one benchmark's grid: tables and figures in results/<report>/ (the benchmark's
# name unless its grid sets `report:`; nothing else writes there), also logged to MLflow as the
# benchmark's `report` run (`report:<name>` for a named one).


rule report:
    input:
        unpack(get_report_inputs),
    output:
        report(
            directory("results/{report}"),
            patterns=["{html}.html", "{png}.png", "{csv}.csv"],
            caption="../report/results.rst",
            category="Results",
            subcategory="{report}",
        ),
    log:
        "logs/{report}/report.log",
    params:
        halo=HALO,
        args=lambda w: halo_args(
            REPORTS[w.report],
            config["benchmarks"][REPORTS[w.report]]["backbones"][0],
            panels_method(REPORTS[w.report]),
        ),
        panels=lambda w: config["benchmarks"][REPORTS[w.report]].get("panels", 3),
        captions=lambda w: report_captions(),
    threads: THREADS
    conda:
        ENV
    shell:
        "{params.halo} report {params.args} --records {input.records} --panels-checkpoint {input.panels} "
        "--panels {params.panels} --out {output} > {log} 2>&1"
