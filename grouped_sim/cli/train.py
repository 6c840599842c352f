"""`grouped-sim train ...`: fine-tune the simulator's models.

`train_app` is the command group; each model's training command lives in its own module and
registers itself on this group (`customer-sft`, `customer-grpo` here; `profile-sft` in
`train_profile.py`). Heavy imports (torch, TRL, peft) happen inside the commands.
"""

from __future__ import annotations

import typer

train_app = typer.Typer(
    help="Fine-tune the simulator's models (LoRA adapters over a Hugging Face base): the customer model (SFT, GRPO) and the profile generator.",
    no_args_is_help=True,
)
