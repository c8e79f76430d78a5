# The report of one benchmark: tables and figures in results/<bench>/ (nothing else writes
# there), also logged to MLflow as the benchmark's `report` run.


rule report:
    input:
        unpack(get_report_inputs),
    output:
        report(
            directory("results/{bench}"),
            patterns=["{name}.png", "{name}.csv"],
            caption="../report/results.rst",
            category="Results",
            subcategory="{bench}",
        ),
    log:
        "logs/{bench}/report.log",
    params:
        halo=HALO,
        args=lambda w: halo_args(
            w.bench, config["benchmarks"][w.bench]["backbones"][0], panels_method(w.bench)
        ),
        panels=lambda w: config["benchmarks"][w.bench].get("panels", 3),
    threads: THREADS
    conda:
        ENV
    shell:
        "{params.halo} report {params.args} --records {input.records} --panels-checkpoint {input.panels} "
        "--panels {params.panels} --out {output} > {log} 2>&1"
