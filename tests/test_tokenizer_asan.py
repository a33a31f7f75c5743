"""The tokenizer, detokenizers and chat renderer under AddressSanitizer + UBSan, driven with random
input (tests/cpp/tokenizer_fuzz.cpp), on the fixture vocabulary and the real 262k Gemma vocabulary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.tokenizer import write_gemma4_tokenizer
from tokenizer_support import write_tokenizer_gguf

REPO = Path(__file__).resolve().parents[1]


def _driver() -> Path:
    # the same sanitizer build tree as test_gguf_bad_input.py's driver
    build = REPO / ".cache" / "build-asan"
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake is needed for the sanitizer build (it is in the [test] extra)")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run([cmake, "-S", str(REPO), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Debug",
                    "-DDIFFGEMMA_TESTS=ON", "-DDIFFGEMMA_SANITIZE=address,undefined"],
                   check=True, capture_output=True)
    r = subprocess.run([cmake, "--build", str(build), "--target", "tokenizer_fuzz"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return build / "tests" / "cpp" / "tokenizer_fuzz"


@pytest.mark.skipif(sys.platform != "linux", reason="the sanitizer build is set up for Linux")
def test_random_input_under_sanitizers(tmp_path, gemma3_gguf):
    driver = _driver()
    write_gemma4_tokenizer(tmp_path, 512)
    models = [write_tokenizer_gguf(tmp_path, tmp_path / "gemma4.gguf"), gemma3_gguf]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    for model in models:
        r = subprocess.run([str(driver), str(model), "5000", "3"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr[-4000:]
        assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr[-4000:]
        assert r.stdout.strip() == "ok 5000"
