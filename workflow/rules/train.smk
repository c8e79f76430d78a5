# Training: one source-only model per benchmark x backbone x model variant (shared by every
# method, budget and seed that uses that model), the target-supervised bound, and the
# acquire -> train rounds of each active run (round r starts from round r-1's model).


rule pretrain:
    input:
        data_input,
    output:
        "runs/{bench}/{backbone}/source/{variant}/model.pt",
    log:
        "logs/{bench}/{backbone}/source/{variant}/pretrain.log",
    params:
        halo=HALO_TRAIN,
        args=lambda w: run_args(f"{w.bench}/{w.backbone}/source/{w.variant}"),
    threads: THREADS
    resources:
        gpu=GPUS * GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} pretrain {params.args} --out $(dirname {output}) > {log} 2>&1"


rule supervised:
    input:
        data_input,
    output:
        "runs/{bench}/{backbone}/supervised/{variant}/model.pt",
    log:
        "logs/{bench}/{backbone}/supervised/{variant}/train.log",
    params:
        halo=HALO_TRAIN,
        args=lambda w: run_args(f"{w.bench}/{w.backbone}/supervised/{w.variant}"),
    threads: THREADS
    resources:
        gpu=GPUS * GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} train --protocol supervised {params.args} --out $(dirname {output}) > {log} 2>&1"


rule acquire:
    input:
        model=previous_model,
        prev=previous_round,
    output:
        budget="runs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/budget.json",
        masks=directory("runs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/masks"),
        blocked="runs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/blocked.npz",
        labelled="runs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/labelled.npz",
    log:
        "logs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/acquire.log",
    params:
        halo=HALO,
        args=lambda w: run_args(round_dir(w)),
        prev=lambda w, input: f"--prev $(dirname {input.prev[0]})" if input.prev else "",
    threads: THREADS
    resources:
        gpu=GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} acquire {params.args} --checkpoint {input.model} --round {wildcards.round} "
        "{params.prev} --out $(dirname {output.budget}) > {log} 2>&1"


rule train_round:
    input:
        init=previous_model,
        budget="runs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/budget.json",
    output:
        "runs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/model.pt",
    log:
        "logs/{bench}/{backbone}/{method}/{budget}/seed{seed}/round{round}/train.log",
    params:
        halo=HALO_TRAIN,
        args=lambda w: run_args(round_dir(w)),
    threads: THREADS
    resources:
        gpu=GPUS * GPU_UNIT,
    conda:
        ENV
    shell:
        "{params.halo} train --protocol active {params.args} --round {wildcards.round} "
        "--init {input.init} --masks $(dirname {input.budget}) --out $(dirname {output}) "
        "> {log} 2>&1"
