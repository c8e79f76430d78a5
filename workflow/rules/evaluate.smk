# Evaluation of every checkpoint on the target validation set, one run record per run
# (halo summarize) and its MLflow run (halo track).


rule evaluate:
    input:
        f"{RUNS_ROOT}/{{run}}/{MODEL_FILE}",
    output:
        f"{RUNS_ROOT}/{{run}}/{EVAL_FILE}",
    log:
        "logs/{run}/evaluate.log",
    params:
        halo=HALO,
        args=lambda w: run_args(w.run),
        budget=lambda w: (
            f"--budget {RUNS_ROOT}/{w.run}/{BUDGET_FILE}" if run_parts(w.run)["kind"] == "round" else ""
        ),
    threads: THREADS
    resources:
        gpu=GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} evaluate {params.args} --checkpoint {input} {params.budget} --out {output} "
        "> {log} 2>&1"


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
    conda:
        ENV
    shell:
        "{params.halo} summarize {params.args} --kind {params.kind} --eval {input.eval} {params.budgets} "
        "--out {output} > {log} 2>&1"


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
