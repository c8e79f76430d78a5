# Data: the embedded synthetic benchmark (real datasets are checked, never written, by the workflow).


rule synth:
    output:
        directory(SYNTH["root"]),
    log:
        "logs/synth.log",
    params:
        halo=HALO,
        size="{}x{}".format(*SYNTH["size"]),
        seed=SYNTH["seed"],
        images=f"--count {SYNTH['count']}" if SYNTH.get("count") else "",
    conda:
        ENV
    shell:
        "{params.halo} synth --out {output} --size {params.size} --seed {params.seed} {params.images} "
        "--quiet > {log} 2>&1"
