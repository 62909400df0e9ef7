"""Ensemble step 3 (Triton Python model): class probabilities to a label and its score."""

import numpy as np
import triton_python_backend_utils as pb_utils

LABELS = np.array([b"negative", b"positive"], dtype=object)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            probs = pb_utils.get_input_tensor_by_name(request, "PROBS").as_numpy()  # [batch, 2]
            best = probs.argmax(axis=1)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("LABEL", LABELS[best].reshape(-1, 1)),
                pb_utils.Tensor("SCORE", probs.max(axis=1, keepdims=True).astype(np.float32)),
            ]))
        return responses
