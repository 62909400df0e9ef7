"""A decoupled Triton Python model: it streams one response per word, like an LLM streams tokens.

A decoupled model answers through each request's response sender instead of returning responses:
``send()`` as many times as it likes, then ``send(flags=TRITONSERVER_RESPONSE_COMPLETE_FINAL)``.
``execute`` returns None. ``request.is_cancelled()`` tells it the client went away.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()[0].decode("utf-8")
            for index, word in enumerate(text.split()):
                if request.is_cancelled():
                    break
                sender.send(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor("TOKEN", np.array([word.encode()], dtype=object)),
                    pb_utils.Tensor("INDEX", np.array([index], dtype=np.int32)),
                ]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
