"""The runner: one process (`worker start`) whose Supervisor runs jobs on its worker slots."""
