"""The store process rank 0 starts (store.spawn_server; Note [Store in a child process]).

    python -m ember.distributed._store_process HOST PORT WORLD_SIZE PARENT_PID TIMEOUT_S
"""
import sys

from .store import serve_until_everyone_left

if __name__ == "__main__":
    serve_until_everyone_left(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
