"""Check that the installed llama.cpp decodes a prompt with the embedded model.

It loads the model, reads a prompt of about 120 tokens and generates one.

Run in a child process, so that a build that crashes (a wheel compiled for another CPU, or one
using AMX where this machine does not allow it: SIGSEGV in ggml_backend_amx_mul_mat) is named
here at install time, instead of killing pytest in the middle of the suite.
"""

from __future__ import annotations

import signal
import subprocess
import sys

PROBE = """
from llama_cpp import Llama
from agentlib.models.local import default_model_path
llama = Llama(model_path=str(default_model_path()), n_threads=1, n_ctx=512, verbose=False)
# A prompt of some length: a batch of tokens takes the matrix-matrix kernels (AMX among them).
llama.create_completion("The quick brown fox jumps over the lazy dog. " * 12, max_tokens=1)
"""


def main() -> int:
    """0 when llama.cpp decodes one token with the embedded model; 1 (with the reason) if not."""
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    if result.returncode == 0:
        print("llama check: llama.cpp decodes the embedded model")
        return 0
    reason = f"exit code {result.returncode}"
    if result.returncode < 0:
        reason = f"killed by {signal.Signals(-result.returncode).name}"
    print(
        f"llama check: llama.cpp failed to decode ({reason}); reinstall llama-cpp-python built "
        'for this machine: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir '
        "--force-reinstall --no-deps llama-cpp-python\n" + result.stderr[-2000:],
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
