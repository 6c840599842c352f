"""`grouped-sim`: simulate customers for sales calls, build the SOP store, train, report.

This module only assembles the command groups; each lives in its own module and imports its
heavy packages inside the command, so `--help` is instant and a CPU box never imports vLLM.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import typer  # noqa: E402

from grouped_sim.cli.coherence import coherence_app  # noqa: E402
from grouped_sim.cli.common import console, label  # noqa: E402
from grouped_sim.cli.discriminator import discriminator_app  # noqa: E402
from grouped_sim.cli.fit import fit  # noqa: E402
from grouped_sim.cli.judge import judge_app  # noqa: E402
from grouped_sim.cli.models import models_app  # noqa: E402
from grouped_sim.cli.probe import probe  # noqa: E402
from grouped_sim.cli.report import compare, report  # noqa: E402
from grouped_sim.cli.simulate import simulate  # noqa: E402
from grouped_sim.cli.serve import serve  # noqa: E402
from grouped_sim.cli.sop import sop_app  # noqa: E402
from grouped_sim.cli.train import train_app  # noqa: E402
import grouped_sim.cli.mine  # noqa: E402,F401  (registers `sop mine`)
import grouped_sim.cli.train_profile  # noqa: E402,F401  (registers `train profile-sft`)
from grouped_sim.cli.profiles import profiles_app  # noqa: E402
from grouped_sim.errors import GroupedSimError  # noqa: E402

app = typer.Typer(
    name="grouped-sim",
    help=(
        "Simulated customers for sales and telemarketing calls (the Grouped Simulator). "
        "Drive your sales agent against diverse, resistant customers; build the SOP behaviour store "
        "from real transcripts; measure how close the simulation is to reality."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("fit")(fit)
app.command("simulate")(simulate)
app.command("probe")(probe)
app.command("serve")(serve)
app.command("report")(report)
app.command("compare")(compare)
app.add_typer(sop_app, name="sop")
app.add_typer(train_app, name="train")
app.add_typer(profiles_app, name="profiles")
app.add_typer(discriminator_app, name="discriminator")
app.add_typer(coherence_app, name="coherence")
app.add_typer(models_app, name="models")
app.add_typer(judge_app, name="judge")


INTERRUPTED = (
    "interrupted (Ctrl-C): every file is whole (written atomically or line by line); rerun the same command to go on "
    "(a run: grouped-sim simulate --resume DIR)"
)


def main() -> None:
    """Console entry point: user errors print one clear line and exit with their code; Ctrl-C
    says what it left behind and exits 130, as a shell expects of an interrupted command."""
    try:
        app()
    except GroupedSimError as exc:
        label(console, "error:", "red", str(exc))
        sys.exit(getattr(exc, "exit_code", 1))
    except SystemExit as exc:  # typer turns Ctrl-C into a silent exit 130: say what it left behind
        if exc.code == 130 and _interrupted(exc):
            label(console, "stopped:", "yellow", INTERRUPTED)
        raise


def _interrupted(exc: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is somewhere in the chain of exceptions behind `exc`."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


if __name__ == "__main__":
    main()
