import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            if np.any(data < 0):
                error = pb_utils.TritonError("negative input", pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", data)], error=error))
            elif np.any(data == 0):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("zero input")))
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", 1 / data)]))
        return responses
