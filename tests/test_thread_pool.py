"""The thread pool's hand-off (engine/src/util/thread_pool.cpp: workers poll, then sleep; static
shares and dynamic claims) under ThreadSanitizer: tests/cpp/thread_pool_stress.cpp runs thousands
of loops on 1-4 threads and checks every item is handed out exactly once; any data race TSan sees
fails the test too. Results' independence of the thread count is tested on whole models in
test_kernels.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.platform != "linux", reason="the sanitizer build is set up for Linux")
def test_thread_pool_under_thread_sanitizer(tmp_path):
    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.fail("a C++ compiler is needed (the package build uses one)")
    exe = tmp_path / "thread_pool_stress"
    build = subprocess.run(
        [cxx, "-std=c++17", "-O1", "-g", "-fsanitize=thread", f"-I{REPO / 'engine' / 'src'}",
         str(REPO / "tests" / "cpp" / "thread_pool_stress.cpp"), str(REPO / "engine" / "src" / "util" / "thread_pool.cpp"),
         "-o", str(exe), "-pthread"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:exitcode=66")
    r = subprocess.run([str(exe), "3000"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    assert "WARNING: ThreadSanitizer" not in r.stderr, r.stderr[-6000:]
    assert "12000 loops, 0 failed" in r.stdout, r.stdout
