"""One module per command: its click definition (listed in COMMANDS, registered by cli.py) and its body,
which takes the App, calls the modules that do the work, and reports. Only click, app, options and
errors are imported at the top; the rest inside the functions, so `immich-remote --help` stays fast."""
