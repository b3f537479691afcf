"""The one training loop shared by all stages, and what it needs: checkpoints, schedules, logging, distribution."""
