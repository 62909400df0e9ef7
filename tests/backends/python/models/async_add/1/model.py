import asyncio
import threading

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    async def initialize(self, args):
        await asyncio.sleep(0)
        self.threads = set()

    async def execute(self, requests):
        async def one(request):
            await asyncio.sleep(0.001)
            data = pb_utils.get_input_tensor_by_name(request, "A").as_numpy()
            self.threads.add(threading.current_thread().name)
            return pb_utils.InferenceResponse([
                pb_utils.Tensor("SUM", np.array([data.sum()], dtype=np.int64)),
                pb_utils.Tensor("DIR", np.array([pb_utils.get_model_dir()], dtype=np.object_)),
            ])

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def is_ready(self):
        return True

    async def finalize(self):
        self.finalized = True
