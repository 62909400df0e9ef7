"""Several ``tritonlite serve`` worker processes on one set of ports (``--workers N``).

Each worker owns a whole :class:`~tritonlite.engine.InferenceEngine` and binds the HTTP, gRPC and
metrics ports with SO_REUSEPORT, so the kernel spreads connections over the workers. What must
stay on one worker (sequences) or tell the truth across all of them (metrics, statistics, model
control) goes over a private Unix socket per worker: see :mod:`tritonlite.workers.peer`.
"""

from tritonlite.workers.aggregate import merge_metrics, merge_statistics
from tritonlite.workers.peer import PeerListener, WorkerEngine, owner_of

__all__ = ["PeerListener", "WorkerEngine", "merge_metrics", "merge_statistics", "owner_of"]
