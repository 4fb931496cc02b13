"""The HTTP API and the dashboard of `queuectl serve` (FastAPI); imported only by `serve`."""
