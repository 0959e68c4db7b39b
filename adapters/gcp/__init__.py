"""Google Cloud Workflows target: compile pipelines to Workflows YAML and emulate its execution locally."""
