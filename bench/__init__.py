"""The queuectl benchmark: queuectl against the spawn limit (`xargs -P`) and against huey and RQ.

Run it with `python -m bench` (or `make bench`); `python -m bench --help` lists the sizes.
"""
