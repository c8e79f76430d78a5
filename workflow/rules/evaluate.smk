# Evaluation of every checkpoint on the target validation set, one run record per run
# (halo summarize) and its MLflow run (halo track).


rule evaluate:
    input:
        "runs/{run}/model.pt",
    output:
        "runs/{run}/eval.json",
    log:
        "logs/{run}/evaluate.log",
    params:
        halo=HALO,
        args=lambda w: run_args(w.run),
        budget=lambda w: (
            f"--budget runs/{w.run}/budget.json" if parse_run(w.run)["kind"] == "round" else ""
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
        unpack(summary_inputs),
    output:
        "runs/{run}/metrics.json",
    log:
        "logs/{run}/summarize.log",
    params:
        halo=HALO,
        args=lambda w: run_args(w.run),
        kind=lambda w: parse_run(w.run)["kind"],
        budgets=lambda w, input: f"--budgets {' '.join(input.budgets)}" if input.budgets else "",
    conda:
        ENV
    shell:
        "{params.halo} summarize {params.args} --kind {params.kind} --eval {input.eval} {params.budgets} "
        "--out {output} > {log} 2>&1"


rule track:
    input:
        "runs/{run}/metrics.json",
    output:
        "runs/{run}/mlflow.json",
    log:
        "logs/{run}/track.log",
    params:
        halo=HALO,
        artifacts=track_artifacts,
    conda:
        ENV
    shell:
        "{params.halo} track --record {input} --artifacts {params.artifacts} --out {output} > {log} 2>&1"
