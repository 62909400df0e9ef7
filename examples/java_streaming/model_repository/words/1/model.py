"""A decoupled (streaming) Triton Python model: one response per word of the input sentence.

An empty sentence ends the stream with an error response, as Triton's decoupled models report errors."""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()[0]
            words = (text.decode("utf-8") if isinstance(text, bytes) else str(text)).split()
            if not words:
                error = pb_utils.TritonError("nothing to stream: the sentence is empty", pb_utils.TritonError.INVALID_ARG)
                sender.send(pb_utils.InferenceResponse(error=error), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                continue
            for i, word in enumerate(words):
                outputs = [pb_utils.Tensor("WORD", np.array([word.encode("utf-8")], dtype=np.object_)),
                           pb_utils.Tensor("INDEX", np.array([i], dtype=np.int32))]
                flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if i == len(words) - 1 else 0
                sender.send(pb_utils.InferenceResponse(outputs), flags=flags)
        return None
