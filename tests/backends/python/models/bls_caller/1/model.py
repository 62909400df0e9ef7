# Calls add_sub through BLS (sync or async, chosen by the "mode" request parameter).
import asyncio
import json

import numpy as np
import triton_python_backend_utils as pb_utils


def _bls_request(data, model_name="add_sub"):
    return pb_utils.InferenceRequest(
        model_name=model_name,
        inputs=[pb_utils.Tensor("INPUT0", data), pb_utils.Tensor("INPUT1", data)],
        requested_output_names=["OUTPUT0"],
        parameters={"origin": "bls"},
    )


def _response(bls_response):
    if bls_response.has_error():
        err = bls_response.error()
        return pb_utils.InferenceResponse([
            pb_utils.Tensor("ERR", np.array([f"{err.code()}:{err.message()}"], dtype=np.object_))
        ])
    out = pb_utils.get_output_tensor_by_name(bls_response, "OUTPUT0")
    return pb_utils.InferenceResponse([pb_utils.Tensor("SUM", out.as_numpy())])


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            params = json.loads(request.parameters())
            target = params.get("target", "add_sub")
            if params.get("mode") == "async":
                results = await asyncio.gather(*(_bls_request(data, target).async_exec() for _ in range(2)))
                responses.append(_response(results[0]))
            elif params.get("mode") == "stream":
                items = list(_bls_request(data, target).exec(decoupled=True))
                assert len(items) == 2 and items[-1].output_tensors() == []  # the final one is empty
                responses.append(_response(items[0]))
            else:
                responses.append(_response(_bls_request(data, target).exec()))
        return responses
