"""examples/rate_limiter: a model that must have the GPU to itself while it runs (here: a short sleep).

It answers Y = 2 * X and SPAN = [start, end], the monotonic nanoseconds of its execute call, so a
client can check that no two executions of the models sharing "gpu_slot" ever overlapped. A request
with the parameter ``hold_until_exists`` (a file path) keeps the slot until that file appears (at
most 30 s): the client uses it to line up waiting requests before letting them compete.
"""

import json
import os
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        start = time.monotonic_ns()
        for request in requests:
            hold = json.loads(request.parameters()).get("hold_until_exists")
            deadline = time.monotonic() + 30
            while hold and not os.path.exists(hold) and time.monotonic() < deadline:
                time.sleep(0.001)
        time.sleep(0.005)  # the work that needs the whole slot
        span = np.array([start, time.monotonic_ns()], dtype=np.int64)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", x * 2), pb_utils.Tensor("SPAN", span)]))
        return responses
