"""Y = 2 * X. Takes about a millisecond per execution, so concurrent requests queue and get batched."""

import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.001)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("Y", 2 * pb_utils.get_input_tensor_by_name(r, "X").as_numpy())])
                for r in requests]
