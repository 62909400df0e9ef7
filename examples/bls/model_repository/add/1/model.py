"""SUM = A + B (a Triton Python model the BLS model calls)."""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "A").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "B").as_numpy()
            if a.shape != b.shape:  # an error response: the BLS caller sees it with response.has_error()
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"A and B must have the same shape, got {list(a.shape)} and {list(b.shape)}")))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SUM", a + b)]))
        return responses
