"""Business Logic Scripting: a Triton Python model that calls other models from its own code.

``C = sqrt(square(A) + square(B))``: the two ``square`` calls go out together with
``async_exec()`` (an ``async def execute`` may await them), the ``add`` call waits with ``exec()``.
Unlike an ensemble, the code decides what to call, and may branch or loop.
"""

import asyncio

import numpy as np
import triton_python_backend_utils as pb_utils


def _output(response, name):
    if response.has_error():  # a failed call comes back as an error response, never an exception
        raise pb_utils.TritonModelException(response.error().message())
    return pb_utils.get_output_tensor_by_name(response, name).as_numpy()


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "A")
            b = pb_utils.get_input_tensor_by_name(request, "B")
            squares = [
                pb_utils.InferenceRequest(
                    model_name="square", requested_output_names=["Y"], inputs=[pb_utils.Tensor("X", t.as_numpy())]
                ).async_exec()
                for t in (a, b)
            ]
            a2, b2 = (_output(r, "Y") for r in await asyncio.gather(*squares))

            add = pb_utils.InferenceRequest(
                model_name="add", requested_output_names=["SUM"],
                inputs=[pb_utils.Tensor("A", a2), pb_utils.Tensor("B", b2)],
            )
            try:
                total = _output(add.exec(), "SUM")
            except pb_utils.TritonModelException as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"add failed: {exc.message()}")))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("C", np.sqrt(total))]))
        return responses
