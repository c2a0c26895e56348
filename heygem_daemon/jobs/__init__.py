"""Job folders: the job.toml model, validation, scheduling, running and publishing."""
