"""A Triton Python model that doubles its input and reports how many requests shared its execute() call.

With ``dynamic_batching`` Triton (and tritonlite) hands a Python model every request of a batch in
one ``execute(requests)`` call; the model answers each request in order.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        batched_with = np.array([[len(requests)]], dtype=np.int32)
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT", x * 2),
                pb_utils.Tensor("BATCHED_WITH", np.repeat(batched_with, x.shape[0], axis=0)),
            ]))
        return responses
