"""``finlake operator``: generate the CRDs, run the operator against the current kubeconfig."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from finlake_operator.crds import render_crds, write_crds

app = typer.Typer(
    help="The Kubernetes operator: CRDs and the reconcile loop.", no_args_is_help=True
)
console = Console(soft_wrap=True)


@app.command("crds")
def crds(
    output: Annotated[Path, typer.Option(help="Folder the CRD files are written to.")] = Path(
        "manifests/crds"
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Only compare; exit 1 if the files differ.")
    ] = False,
) -> None:
    """Write the CRDs generated from the spec models (or check them with --check)."""
    if check:
        stale = [
            name
            for name, text in render_crds().items()
            if not (output / name).is_file() or (output / name).read_text("utf-8") != text
        ]
        if stale:
            console.print(f"[red]stale CRDs in {output}:[/] {', '.join(stale)}", highlight=False)
            raise typer.Exit(1)
        console.print(f"CRDs in {output} are up to date", highlight=False)
        return
    for path in write_crds(output):
        console.print(f"wrote {path}", highlight=False)


@app.command("run")
def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch only these namespaces.")
    ] = None,
    standalone: Annotated[
        bool, typer.Option("--standalone", help="No peering (a single operator).")
    ] = False,
    peering: Annotated[str | None, typer.Option(help="Peering name (HA).")] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="Kubeconfig file.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Debug logs.")] = False,
) -> None:
    """Run the operator until SIGTERM (one active replica per peering)."""
    import secrets

    import kopf

    from finlake_operator.config import OperatorSettings
    from finlake_operator.kube import Kube, load_api_client
    from finlake_operator.startup import build_registry, quiet_logs

    settings = OperatorSettings()
    options = settings.operator
    update: dict[str, object] = {}
    if namespace:
        update["namespaces"] = list(namespace)
    if standalone:
        update["standalone"] = True
    if peering:
        update["peering"] = peering
    if options.priority is None:
        # Equal priorities pause every peer; a random one makes exactly one active.
        update["priority"] = secrets.randbelow(1_000_000) + 1
    options = options.model_copy(update=update)
    kube = Kube(load_api_client(str(kubeconfig) if kubeconfig else None))
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON)
    quiet_logs()
    if kubeconfig is not None:
        import os

        os.environ["KUBECONFIG"] = str(kubeconfig)
    kopf.run(
        registry=build_registry(kube, options),
        standalone=options.standalone,
        peering_name=None if options.standalone else options.peering,
        priority=options.priority,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=f"http://{options.liveness_host}:{options.liveness_port}/healthz",
    )


@app.command("cleanup")
def cleanup(
    release: Annotated[str, typer.Option(help="Helm release whose finlake resources go.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="The release's namespace.")],
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the operator to let them go.")
    ] = 120.0,
    kubeconfig: Annotated[Path | None, typer.Option(help="Kubeconfig file.")] = None,
) -> None:
    """Delete a release's finlake resources and wait until the operator has cleaned them up.

    The chart's pre-delete hook: `helm uninstall` would otherwise delete the operator together
    with the resources, and nothing would remove their finalizers."""
    from finlake_operator.cleanup import FINALIZER_HINT, delete_and_wait, release_resources
    from finlake_operator.kube import Kube, load_api_client

    kube = Kube(load_api_client(str(kubeconfig) if kubeconfig else None))
    refs = release_resources(kube, namespace, release)
    if not refs:
        console.print(f"release {release} has no finlake resources in {namespace}", highlight=False)
        return
    left = delete_and_wait(
        kube, refs, timeout, report=lambda line: console.print(line, highlight=False)
    )
    if left:
        console.print(
            f"[red]still present after {timeout:g} s:[/] {', '.join(map(str, left))}. "
            + FINALIZER_HINT,
            highlight=False,
        )
        raise typer.Exit(1)
    console.print(
        f"the {len(refs)} finlake resources of release {release} are gone", highlight=False
    )
