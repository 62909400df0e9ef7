"""examples/decoupled_ensemble: a stand-in for a token generator that streams its output.

For TOKENS it sends NEXT_TOKEN = each token, last first, one response each, then the final flag
alone; it stops early when the client cancels (``is_cancelled``).
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS").as_numpy()
            sender = request.get_response_sender()
            for token in tokens[::-1]:
                if sender.is_cancelled():
                    break
                sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("NEXT_TOKEN", np.array([token], np.int32))]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
