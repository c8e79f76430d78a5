# Training: one source-only model per benchmark x backbone x model variant x seed (shared by
# every method and budget of that seed that uses that model), the target-supervised bound, and the
# acquire -> train rounds of each active run (round r starts from round r-1's model).
# Every training job also evaluates its finished model on the target validation set
# (--eval-out: halo evaluate's metrics JSON, in the same process; docs/design.md, "Job
# start-up"), so a run folder's eval.json comes with its model.pt.
# Folder patterns come from halo.runs (SOURCE_RUN, SUPERVISED_RUN, ROUND_DIR), file names from
# halo.runs and halo.acquisition.rounds.


rule pretrain:
    input:
        data=get_data,
        cfg=get_run_config,
    output:
        model=f"{SOURCE_RUN}/{MODEL_FILE}",
        metrics=f"{SOURCE_RUN}/{EVAL_FILE}",
    log:
        "logs/{bench}/{backbone}/source/{variant}/seed{seed}/pretrain.log",
    params:
        halo=HALO_TRAIN,
        args=lambda w: run_args(path_of(SOURCE_RUN, w).removeprefix(f"{RUNS_ROOT}/")),
    threads: THREADS
    resources:
        gpu=GPUS * GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} pretrain {params.args} --out $(dirname {output.model}) "
        "--eval-out {output.metrics} > {log} 2>&1"


rule supervised:
    input:
        data=get_data,
        cfg=get_run_config,
    output:
        model=f"{SUPERVISED_RUN}/{MODEL_FILE}",
        metrics=f"{SUPERVISED_RUN}/{EVAL_FILE}",
    log:
        "logs/{bench}/{backbone}/supervised/{variant}/seed{seed}/train.log",
    params:
        halo=HALO_TRAIN,
        args=lambda w: run_args(path_of(SUPERVISED_RUN, w).removeprefix(f"{RUNS_ROOT}/")),
    threads: THREADS
    resources:
        gpu=GPUS * GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} train --protocol supervised {params.args} --out $(dirname {output.model}) "
        "--eval-out {output.metrics} > {log} 2>&1"


rule acquire:
    wildcard_constraints:
        bench=SIMULATED_BENCH,
    input:
        model=get_previous_model,
        prev=get_previous_round,
        radius=get_source_radius_model,
        cfg=get_run_config,
    output:
        budget=f"{ROUND_DIR}/{BUDGET_FILE}",
        masks=directory(f"{ROUND_DIR}/{MASKS_DIR}"),
        blocked=f"{ROUND_DIR}/{BLOCKED_FILE}",
        labelled=f"{ROUND_DIR}/{LABELLED_FILE}",
    log:
        "logs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/acquire.log",
    params:
        halo=HALO,
        args=lambda w: run_args(round_run(w)),
        prev=lambda w, input: f"--prev $(dirname {input.prev[0]})" if input.prev else "",
        radius=lambda w, input: source_radius_arg(input),
    threads: THREADS
    resources:
        gpu=GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} acquire {params.args} --checkpoint {input.model} --round {wildcards.round} "
        "{params.prev} {params.radius} --out $(dirname {output.budget}) > {log} 2>&1"


# A person labels the regions (annotator: human): the acquisition writes the round's queries,
# and the round's masks and budget.json come from the labels the person imports (`halo annotate`
# or `halo import-labels`, which write answers/, the masks and budget.json). Rule labels then has
# nothing to do; without labels it stops the workflow with one line naming the round and the
# commands to run (and onerror lists every waiting round). It reruns `halo complete-round`, which
# rebuilds the masks from answers/, whenever the queries change.
rule acquire_queries:
    wildcard_constraints:
        bench=HUMAN_BENCH,
    input:
        model=get_previous_model,
        prev=get_previous_round,
        radius=get_source_radius_model,
        cfg=get_run_config,
    output:
        manifest=f"{ROUND_DIR}/{MANIFEST_FILE}",
        blocked=f"{ROUND_DIR}/{BLOCKED_FILE}",
        labelled=f"{ROUND_DIR}/{LABELLED_FILE}",
    log:
        "logs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/acquire.log",
    params:
        halo=HALO,
        args=lambda w: run_args(round_run(w)),
        prev=lambda w, input: f"--prev $(dirname {input.prev[0]})" if input.prev else "",
        radius=lambda w, input: source_radius_arg(input),
    threads: THREADS
    resources:
        gpu=GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} acquire {params.args} --checkpoint {input.model} --round {wildcards.round} "
        "{params.prev} {params.radius} --annotator human --out $(dirname {output.blocked}) > {log} 2>&1"


rule labels:
    wildcard_constraints:
        bench=HUMAN_BENCH,
    input:
        manifest=f"{ROUND_DIR}/{MANIFEST_FILE}",
    output:
        budget=f"{ROUND_DIR}/{BUDGET_FILE}",
        masks=directory(f"{ROUND_DIR}/{MASKS_DIR}"),
    log:
        "logs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/labels.log",
    params:
        halo=HALO_CLI,
    conda:
        ENV
    shell:
        # the one line that says what to run next goes to the terminal too
        "{params.halo} complete-round $(dirname {output.budget}) > {log} 2>&1 "
        "|| {{ cat {log} >&2; exit 2; }}"


localrules:
    labels,


rule train_round:
    input:
        init=get_previous_model,
        budget=f"{ROUND_DIR}/{BUDGET_FILE}",
        cfg=get_run_config,
    output:
        model=f"{ROUND_DIR}/{MODEL_FILE}",
        metrics=f"{ROUND_DIR}/{EVAL_FILE}",
    log:
        "logs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/train.log",
    params:
        halo=HALO_TRAIN,
        args=lambda w: run_args(round_run(w)),
    threads: THREADS
    resources:
        gpu=GPUS * GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} train --protocol active {params.args} --round {wildcards.round} "
        "--init {input.init} --masks $(dirname {input.budget}) --out $(dirname {output.model}) "
        "--eval-out {output.metrics} > {log} 2>&1"
