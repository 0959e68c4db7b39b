"""What every cloud adapter does alike, in one place: the offload envelope and blob stores, the task
catalog a deployed shim runs from, emulation overrides, the analysis of what the orchestrator itself
reads, and the adapters' errors. Each cloud folder builds on these instead of its own variant."""
