"""Cloud adapters: each compiles the cloud-neutral IR into one cloud's native state machine."""
