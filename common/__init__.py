"""What the gateway and the model server both run on: settings from the environment, JSON logs,
and waitress answering its own errors as JSON."""
