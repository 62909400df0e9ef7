import triton_python_backend_utils as pb_utils

import a_module_that_does_not_exist_anywhere


class TritonPythonModel:
    def execute(self, requests):
        return []
