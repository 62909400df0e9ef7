import numpy as np
import triton_python_backend_utils as pb_utils

CALLS = []


class TritonPythonModel:
    def initialize(self, args):
        CALLS.append("initialize")
        self.ready = True

    def execute(self, requests):
        CALLS.append("execute")
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([len(CALLS)], dtype=np.int32))]) for _ in requests]

    def is_ready(self):
        return self.ready

    def finalize(self):
        CALLS.append("finalize")
        raise RuntimeError("finalize fails but unload goes on")
