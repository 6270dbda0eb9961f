"""The servers a user would run instead of ours, each in its own virtualenv under .cache/ (benchmarks/peer.py)."""
