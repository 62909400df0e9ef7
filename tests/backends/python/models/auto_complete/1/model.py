import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        inputs = [{"name": "X", "data_type": "TYPE_FP32", "dims": [3]}, {"name": "Y", "data_type": "TYPE_FP32", "dims": [3], "optional": True}]
        outputs = [{"name": "Z", "data_type": "TYPE_FP32", "dims": [3]}]
        config = auto_complete_model_config.as_dict()
        input_names = [i["name"] for i in config["input"]]
        output_names = [o["name"] for o in config["output"]]
        for i in inputs:
            if i["name"] not in input_names:
                auto_complete_model_config.add_input(i)
        for o in outputs:
            if o["name"] not in output_names:
                auto_complete_model_config.add_output(o)
        auto_complete_model_config.set_max_batch_size(16)
        auto_complete_model_config.set_dynamic_batching()
        auto_complete_model_config.set_model_transaction_policy(dict(decoupled=False))
        return auto_complete_model_config

    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X").as_numpy()
            y = pb_utils.get_input_tensor_by_name(r, "Y")
            z = x + (y.as_numpy() if y is not None else 0)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Z", z.astype(np.float32))]))
        return out
