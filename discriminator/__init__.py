"""The pattern discriminator (real vs model-written customer turns) and the rewards built on it."""
