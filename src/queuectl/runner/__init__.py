"""The runner: a supervisor process that executes jobs on N worker slots."""
