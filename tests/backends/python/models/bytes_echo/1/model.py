import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            upper = np.array([[v.decode("utf-8").upper() for v in row] for row in data], dtype=np.object_)
            lengths = np.array([[len(v) for v in row] for row in data], dtype=np.int32)
            params = json.loads(request.parameters())
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("OUT", data),
                        pb_utils.Tensor("UPPER", upper),
                        pb_utils.Tensor("LENGTHS", lengths),
                    ],
                    parameters={"echo_count": int(data.size), "seen": params.get("tag", "none"), "ok": True},
                )
            )
        return responses
