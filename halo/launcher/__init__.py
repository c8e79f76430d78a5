"""Fast job start-up: a fork server that has torch and the model libraries imported once.

A plain ``python -m halo.cli`` job spends most of a short job importing torch, torchvision,
timm and segmentation-models-pytorch (about 20 s on a 2-core laptop; docs/design.md, "Job
start-up"). The workflow starts one server per Snakemake invocation (``onstart``); every job
runs ``python -m halo.launcher <halo args>``, a tiny client that hands its argv, working folder,
environment and its stdin/stdout/stderr to the server, which forks a child already holding the
imports; the child runs :func:`halo.cli.main` exactly as the plain process would and the client
exits with its exit code. Without a server (none configured, not started yet, another machine
under SLURM) the client replaces itself with the plain ``python -m halo.cli`` process: same
command, same files, only slower.

- :mod:`halo.launcher.protocol`: the socket path and the messages (owner of both);
- :mod:`halo.launcher.server`: bind, preload, accept, fork; the child runs the command;
- :mod:`halo.launcher.client`: connect and hand over, or fall back to the plain process.

Nothing here imports torch at module import; the server imports it after binding its socket.
"""
