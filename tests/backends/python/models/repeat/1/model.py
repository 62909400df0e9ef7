# Decoupled: one response per input element, sent from a worker thread after execute returns.
import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("repeat needs the decoupled transaction policy")
        self.threads = []
        self.model_dirs = []

    def execute(self, requests):
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().copy()
            sender = request.get_response_sender()
            thread = threading.Thread(target=self._send, args=(values, sender))
            thread.start()
            self.threads.append(thread)
        mode = json.loads(requests[0].parameters()).get("mode")
        if mode == "return_list":
            return [pb_utils.InferenceResponse([]) for _ in requests]
        return None

    def _send(self, values, sender):
        self.model_dirs.append(pb_utils.get_model_dir())
        for idx, value in enumerate(values):
            time.sleep(0.001)
            sender.send(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUT", np.array([value], dtype=np.int32)),
                pb_utils.Tensor("IDX", np.array([idx], dtype=np.uint32)),
            ]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        try:
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        except pb_utils.TritonModelException as exc:
            self.after_final = str(exc)
