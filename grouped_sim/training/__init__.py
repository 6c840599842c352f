"""Fine-tuning the simulator's models: the customer model (SFT, then GRPO) lives here.

`customer.py` trains the customer model on D_sim; the shared trainer setup (base model, LoRA,
tokenizer, TRL arguments, the train_log.jsonl callback) is `grouped_sim.models.finetune`. The
profile model's SFT is `grouped_sim.profiles.training`; the pattern discriminator's training is
`grouped_sim.discriminator.model`.

This package sits above sop_db, profiles and discriminator (it uses the discriminator's rewards and
split) and below the CLI; core modules never import it.
"""
