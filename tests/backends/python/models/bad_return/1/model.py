# Returns what the request's "mode" parameter asks for, to exercise python_backend's return checks.
import json
import threading

import triton_python_backend_utils as pb_utils


def _ok(request):
    data = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
    return pb_utils.InferenceResponse([pb_utils.Tensor("OUT", data * 2)])


class TritonPythonModel:
    def execute(self, requests):
        mode = json.loads(requests[0].parameters()).get("mode", "ok")
        if mode == "tuple":
            return tuple(_ok(r) for r in requests)
        if mode == "short":
            return [_ok(r) for r in requests][:-1]
        if mode == "wrong_type":
            return ["not a response" for _ in requests]
        if mode == "sender":
            for r in requests:
                r.get_response_sender().send(_ok(r), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return None
        if mode == "sender_later":
            def later():
                for r in requests:
                    sender = r.get_response_sender()
                    sender.send(_ok(r))
                    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            threading.Thread(target=later).start()
            return None
        if mode == "sender_and_return":
            for r in requests:
                r.get_response_sender().send(_ok(r), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return [_ok(r) for r in requests]
        if mode == "mixed":
            requests[0].get_response_sender().send(_ok(requests[0]), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return [None] + [_ok(r) for r in requests[1:]]
        if mode == "sender_errors":
            sender = requests[0].get_response_sender()
            found = []
            for args in ((None, 0), (_ok(requests[0]), 5), (None, pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)):
                try:
                    sender.send(*args)
                except pb_utils.TritonModelException as exc:
                    found.append(str(exc))
            sender.send(_ok(requests[0]), flags=0)
            try:
                sender.send(_ok(requests[0]), flags=0)
            except pb_utils.TritonModelException as exc:
                found.append(str(exc))
            sender.send(None, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            try:
                sender.send(None, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            except pb_utils.TritonModelException as exc:
                found.append(str(exc))
            self.sender_errors = found
            return None
        return [_ok(r) for r in requests]
