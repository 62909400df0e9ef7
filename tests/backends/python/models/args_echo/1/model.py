import json
import threading

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.args = dict(args)
        self.types = {k: type(v).__name__ for k, v in args.items()}

    def _thread_model_dir(self):
        found = []
        thread = threading.Thread(target=lambda: found.append(pb_utils.get_model_dir()))
        thread.start()
        thread.join()
        return found[0]

    def execute(self, requests):
        responses = []
        for request in requests:
            info = {
                "request_id": request.request_id(),
                "correlation_id": request.correlation_id(),
                "flags": request.flags(),
                "timeout": request.timeout(),
                "requested": request.requested_output_names(),
                "parameters": json.loads(request.parameters()),
                "cancelled": request.is_cancelled(),
                "types": self.types,
            }
            values = dict(self.args)
            values["model_dir"] = pb_utils.get_model_dir()
            values["thread_model_dir"] = self._thread_model_dir()
            values["request_info"] = json.dumps(info)
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(k, np.array([v], dtype=np.object_)) for k, v in values.items()]
            ))
        return responses
