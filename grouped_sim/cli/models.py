"""`grouped-sim models ...`: the local GGUF models that ship inside PyPI packages."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import out

models_app = typer.Typer(
    help="The embedded GGUF models (shipped inside PyPI packages, run on llama.cpp): list them, join and check them.",
    no_args_is_help=True,
)


@models_app.command("list")
def models_list() -> None:
    """Each embedded model: its names for `llamacpp:NAME`, what it is, its licence and whether it is installed."""
    from rich.table import Table

    from grouped_sim.models.embedded import embedded_models, models_cache, part_paths

    table = Table("name (aliases)", "model", "form", "licence", "state")
    for model in embedded_models().values():
        if model.parts is not None:
            missing = part_paths(model)[1]
            joined = (models_cache() / model.file).is_file()
            state = f"{len(missing)} of {model.parts.count} parts missing" if missing else ("joined" if joined else "parts installed, not joined yet")
        else:
            from grouped_sim.models.embedded import _module_folder

            state = "installed" if model.package and _module_folder(model.package.module) else "not installed"
        table.add_row(f"{model.name} ({', '.join(model.aliases)})", model.description, model.form, model.licence, state)
    out.print(table)


@models_app.command("check")
def models_check(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to check (names or aliases). Default: every embedded model.")] = None,
) -> None:
    """Make each embedded model whole and check it: join split parts into the model cache once
    (GROUPED_SIM_CACHE, else ~/.cache/grouped-sim), then check size and SHA-256. Exit 2 with the
    pip command to run when a package is missing or a file is damaged. Without names, an optional
    model none of whose packages is installed is listed and skipped."""
    from grouped_sim.errors import InputError
    from grouped_sim.models.embedded import embedded_models, embedded_path, find_embedded, part_paths

    chosen = []
    for name in names or list(embedded_models()):
        model = find_embedded(name)
        if model is None:
            raise InputError(f"no embedded model called {name!r}; known: {', '.join(embedded_models())}")
        chosen.append(model)
    for model in chosen:
        if not names and model.optional and model.parts is not None and len(part_paths(model)[1]) == model.parts.count:
            out.print(f"{model.name}: not installed (optional; {model.install_hint()})")
            continue
        path = embedded_path(model)
        out.print(f"{model.name}: ok ({path})")


@models_app.command("warm")
def models_warm() -> None:
    """Fill the per-machine caches (GROUPED_SIM_CACHE, else ~/.cache/grouped-sim) that the demo and
    every report against the sample corpus read: the judge reader's tokenizer, SmolLM2-135M
    de-quantised for transformers, and the MiniLM vectors of the sample corpus. `make install` runs
    it; each is otherwise computed on first use, with the same results. About 30 s on 2 cores."""
    from grouped_sim.app.warm import warm_caches

    warm_caches(out.print)
