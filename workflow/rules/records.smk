# One run record per run (halo summarize, from the eval.json every training job writes beside
# its model.pt) and its MLflow run (halo track). A checkpoint made elsewhere is evaluated with
# `halo evaluate`, the same code the training jobs call.


rule summarize:
    input:
        unpack(get_summary_inputs),
    output:
        f"{RUNS_ROOT}/{{run}}/{RECORD_FILE}",
    log:
        "logs/{run}/summarize.log",
    params:
        halo=HALO,
        args=lambda w: run_args(w.run),
        kind=lambda w: run_parts(w.run)["kind"],
        budgets=lambda w, input: f"--budgets {' '.join(input.budgets)}" if input.budgets else "",
        start=lambda w, input: f"--start-eval {input.start[0]}" if input.start else "",
    conda:
        ENV
    shell:
        "{params.halo} summarize {params.args} --kind {params.kind} --eval {input.eval} {params.budgets} "
        "{params.start} --out {output} > {log} 2>&1"


rule track:
    input:
        f"{RUNS_ROOT}/{{run}}/{RECORD_FILE}",
    output:
        f"{RUNS_ROOT}/{{run}}/{TRACKED_FILE}",
    log:
        "logs/{run}/track.log",
    params:
        halo=HALO,
        artifacts=get_track_artifacts,
    conda:
        ENV
    shell:
        "{params.halo} track --record {input} --artifacts {params.artifacts} --out {output} > {log} 2>&1"
