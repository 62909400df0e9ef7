"""Regenerate the committed ``*_pb2.py`` modules from the ``.proto`` files beside this script.

Run ``python -m tritonlite.protos.generate`` after editing a proto. The output is post-processed so
every module registers its descriptors in one private ``DescriptorPool`` owned by the first module
in :data:`PROTOS`, not in protobuf's default pool: ``tritonclient.grpc.model_config_pb2`` defines
the same ``inference.*`` names there and the two would clash in one process. Generated modules that
import each other get package-relative imports, so a proto importing ``model_config.proto`` (e.g.
``grpc_service.proto``) joins the same pool by being appended to :data:`PROTOS`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Generated in this order; the first owns the private pool, later ones import it from there.
PROTOS: list[str] = ["model_config.proto", "grpc_service.proto"]

# Protos that also get a ``*_pb2_grpc.py`` (service stubs) from the grpc plugin.
GRPC_PROTOS: set[str] = {"grpc_service.proto"}

_DEFAULT_POOL = "_descriptor_pool.Default()"


def _module(proto: str) -> str:
    return Path(proto).stem + "_pb2"


def _relative_imports(text: str) -> str:
    """``import x_pb2 as y`` → ``from . import x_pb2 as y`` for modules generated here."""
    for proto in PROTOS:
        mod = _module(proto)
        text = re.sub(rf"^import {mod}( as \w+)?$", rf"from . import {mod}\1", text, flags=re.M)
    return text


def _private_pool(text: str, proto: str) -> str:
    """Route ``AddSerializedFile`` to the package's private pool instead of the default one."""
    if _DEFAULT_POOL not in text:
        raise RuntimeError(f"unexpected protoc output for {proto}: no default-pool registration")
    owner = _module(PROTOS[0])
    if _module(proto) == owner:
        header = (
            "# tritonlite: descriptors live in a private pool (see generate.py).\n"
            "POOL = _descriptor_pool.DescriptorPool()\n"
        )
    else:
        header = (
            "# tritonlite: descriptors live in a private pool (see generate.py).\n"
            f"from .{owner} import POOL\n"
        )
    anchor = "# @@protoc_insertion_point(imports)\n"
    if anchor not in text:
        raise RuntimeError(f"unexpected protoc output for {proto}: no imports insertion point")
    text = text.replace(anchor, anchor + "\n" + header, 1)
    return text.replace(_DEFAULT_POOL, "POOL")


def generate(out_dir: Path = HERE) -> list[Path]:
    """Run protoc over :data:`PROTOS` and rewrite the results in ``out_dir``; return the files."""
    from grpc_tools import protoc  # imported here: grpcio-tools is a dev-only dependency

    include = str(Path(protoc.__file__).resolve().parent / "_proto")
    written: list[Path] = []
    for proto in PROTOS:
        args = ["grpc_tools.protoc", f"-I{HERE}", f"-I{include}", f"--python_out={out_dir}"]
        if proto in GRPC_PROTOS:
            args.append(f"--grpc_python_out={out_dir}")
        args.append(str(HERE / proto))
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        pb2 = out_dir / f"{_module(proto)}.py"
        pb2.write_text(_private_pool(_relative_imports(pb2.read_text()), proto))
        written.append(pb2)
        if proto in GRPC_PROTOS:
            grpc_file = out_dir / f"{_module(proto)}_grpc.py"
            grpc_file.write_text(_relative_imports(grpc_file.read_text()))
            written.append(grpc_file)
    return written


def main() -> int:
    for path in generate():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
