"""The named steps of the create pipeline, one module per concern."""
