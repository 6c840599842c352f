"""Customer profiles: constraint specs, archetype presets, the profile generator and its training."""
