"""Ensemble step 1 (Triton Python model): text to word counts over the classifier's vocabulary."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        # the order the classifier's weights expect (examples/build_onnx_models.py SENTIMENT_VOCABULARY)
        self.vocabulary = ["good", "great", "bad", "awful"]
        config = json.loads(args["model_config"])
        self.dtype = pb_utils.triton_string_to_numpy(pb_utils.get_output_config_by_name(config, "FEATURES")["data_type"])

    def execute(self, requests):
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()  # [batch, 1] of bytes
            features = np.zeros((texts.shape[0], len(self.vocabulary)), dtype=self.dtype)
            for row, text in enumerate(texts[:, 0]):
                for word in text.decode("utf-8").lower().replace(",", " ").replace(".", " ").split():
                    if word in self.vocabulary:
                        features[row, self.vocabulary.index(word)] += 1
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("FEATURES", features)]))
        return responses
