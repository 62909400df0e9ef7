"""examples/decoupled_ensemble: PROMPT (one UTF-8 string) -> TOKENS, the code point of each character."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            prompt = pb_utils.get_input_tensor_by_name(request, "PROMPT").as_numpy()[0]
            tokens = np.array([ord(c) for c in prompt.decode()], dtype=np.int32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("TOKENS", tokens)]))
        return responses
