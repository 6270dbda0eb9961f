"""The process launchers of local mode, used by the integration tests."""

from local_mode.processes import Gateway, ModelServer, Service, free_port, serve_tflite, wait_until

__all__ = ["Gateway", "ModelServer", "Service", "free_port", "serve_tflite", "wait_until"]
