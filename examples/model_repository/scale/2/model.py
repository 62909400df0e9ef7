"""Version 2 of 'scale': OUTPUT = INPUT * 2."""

import numpy as np
import triton_python_backend_utils as pb_utils

FACTOR = 2


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(
                [pb_utils.Tensor("OUTPUT", pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy() * np.float32(FACTOR))]
            )
            for r in requests
        ]
