"""A stateless Triton Python model that keeps a running total per sequence through implicit state.

The sequence batcher adds two inputs the client never sends: ``START`` (1 on a sequence's first
request) and ``TOTAL_IN`` (the ``TOTAL_STATE`` this model returned for the sequence's previous
request; zeros at the start, from ``initial_state``). Requests of different sequences may share one
``execute`` call: each carries its own state.
"""

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            start = pb_utils.get_input_tensor_by_name(request, "START").as_numpy()
            previous = pb_utils.get_input_tensor_by_name(request, "TOTAL_IN").as_numpy()
            # START is redundant with a zero initial_state; it shows how a model sees a new sequence
            total = x if start.any() else previous + x
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("TOTAL", total),
                pb_utils.Tensor("TOTAL_STATE", total),  # the state for this sequence's next request
            ]))
        return responses
