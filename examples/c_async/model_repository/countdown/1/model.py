"""A decoupled Triton Python model: N responses from a worker thread, then the final flag alone
(the C callback then gets a NULL response with TRITONLITE_RESPONSE_FLAG_FINAL)."""

import threading

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            n = int(pb_utils.get_input_tensor_by_name(request, "N").as_numpy()[0])
            threading.Thread(target=self._count, args=(n, request.get_response_sender()), daemon=True).start()
        return None  # decoupled: responses go through the sender

    @staticmethod
    def _count(n, sender):
        for i in range(n, 0, -1):
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("COUNT", np.array([i], np.int32))]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
