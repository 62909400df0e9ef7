"""A Triton Python model with its own Prometheus metrics (``pb_utils.MetricFamily``).

Families are created once in ``initialize``; each labelled ``Metric`` is a time series. They show up
on the same ``/metrics`` endpoint as Triton's ``nv_*`` metrics (and in ``engine.metrics()``).
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        labels = {"model": args["model_name"], "version": args["model_version"]}
        words = pb_utils.MetricFamily(
            name="word_count_words", description="Words counted", kind=pb_utils.MetricFamily.COUNTER)
        longest = pb_utils.MetricFamily(
            name="word_count_longest_text", description="Most words in one request so far", kind=pb_utils.MetricFamily.GAUGE)
        lengths = pb_utils.MetricFamily(
            name="word_count_text_words", description="Words per request", kind=pb_utils.MetricFamily.HISTOGRAM)
        self.words = words.Metric(labels=labels)
        self.longest = longest.Metric(labels=labels)
        self.lengths = lengths.Metric(labels=labels, buckets=[2, 5, 10])

    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()[0].decode("utf-8")
            n = len(text.split())
            self.words.increment(n)
            self.longest.set(max(self.longest.value(), n))
            self.lengths.observe(n)
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("WORDS", np.array([n], dtype=np.int32))]))
        return responses
