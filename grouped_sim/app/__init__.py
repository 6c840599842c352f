"""The application layer: the CLI, `serve`, and the one place that turns spec strings into
participants and stores (build.py). Nothing imports this package."""
