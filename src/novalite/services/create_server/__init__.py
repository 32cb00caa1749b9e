"""POST /servers as a pipeline of named steps; see pipeline.py for the order."""
