"""One module per command: each takes the CLI's App, calls the modules that do the work, and reports."""
