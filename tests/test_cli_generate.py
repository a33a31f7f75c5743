"""diffgemma-cli text generation, run as the real binary on a converted fixture: plain, --json,
--diffusion-visual (through a pseudo-terminal and the non-tty fallback), -cnv chat, -n, seeds,
bad flag values."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from diffgemma import _core


@pytest.fixture(scope="module")
def cli():
    exe = shutil.which("diffgemma-cli")
    assert exe, "diffgemma-cli is not on PATH: install the package (pip install .)"
    return exe


@pytest.fixture(scope="module")
def gguf(tiny_gguf):
    return str(tiny_gguf("tiny", "f32"))


def run(cli, *args, stdin=None, timeout=60):
    return subprocess.run([cli, *args], capture_output=True, text=True, input=stdin, timeout=timeout)


STATS = re.compile(r"diffgemma: prompt (\d+) tokens, prefill [\d.]+ ms \| (\d+) canvas(?:es)?, (\d+) denoising steps "
                   r"\([\d.]+ per canvas, [\d.]+ ms/step\) \| (\d+) tokens, ([\d.]+) tokens/forward \| "
                   r"[\d.]+ tokens/s effective \| first canvas [\d.]+ ms \| total [\d.]+ ms \| stop: (\w+)")


def test_plain_prompt_end_to_end(cli, gguf):
    r = run(cli, "-m", gguf, "-p", "Hello there", "-n", "20", "-s", "7", "--diffusion-steps", "3",
            "--no-display-prompt")
    assert r.returncode == 0, r.stderr
    assert "diffgemma: seed 7" in r.stderr
    m = STATS.search(r.stderr)
    assert m, r.stderr
    n_prompt, canvases, steps, n_tokens, tpf, stop = m.groups()
    assert int(canvases) <= 2 and int(steps) <= 6 and int(n_tokens) <= 20
    # the same seed through the JSON mode gives the same text and the same counts
    j = run(cli, "-m", gguf, "-p", "Hello there", "-n", "20", "-s", "7", "--diffusion-steps", "3", "--json")
    done = json.loads(j.stdout.strip().splitlines()[-1])
    assert done["type"] == "done" and done["seed"] == 7
    assert r.stdout == done["text"] + "\n"
    assert done["stats"]["prompt_tokens"] == int(n_prompt) and done["stats"]["denoising_steps"] == int(steps)
    assert done["stop"] == stop


def test_prompt_is_chat_formatted_unless_raw(cli, gguf):
    tok = _core.Tokenizer(gguf)
    chat = tok.tokenize(tok.apply_chat_template([{"role": "user", "content": "Hi"}]), add_bos=False)
    for extra, want in (([], len(chat)), (["--raw"], len(tok.tokenize("Hi", add_bos=True)))):
        j = run(cli, "-m", gguf, "-p", "Hi", "-n", "4", "-s", "1", "--diffusion-steps", "1", "--json", *extra)
        assert json.loads(j.stdout.splitlines()[-1])["stats"]["prompt_tokens"] == want


def test_json_events(cli, gguf):
    r = run(cli, "-m", gguf, "--prompt-ids", "2,105,9,44,300", "-n", "20", "-s", "3", "--diffusion-steps", "2",
            "--json", "--diffusion-stability", "0", "--diffusion-confidence", "1000")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds == ["draft", "commit", "draft", "commit", "done"]  # stability 0: one step per canvas
    d = events[0]
    assert len(d["tokens"]) == 16 and len(d["accepted"]) == 16 and sum(d["accepted"]) == d["n_accepted"]
    assert d["temperature"] == pytest.approx(0.8)
    done = events[-1]
    assert len(done["tokens"]) == 20 or done["stop"] == "eos"
    assert done["tokens"] == (events[1]["tokens"] + events[3]["tokens"])[: len(done["tokens"])]
    assert done["stats"]["canvases"] == 2 and done["stats"]["denoising_steps"] == 2
    assert done["stats"]["tokens_per_forward"] > 0


def test_same_seed_same_output_across_threads(cli, gguf):
    outs = {run(cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", "24", "-s", "99", "-t", t, "--diffusion-steps",
                "4", "--json").stdout.splitlines()[-1] for t in ("1", "2", "3")}
    texts = {json.dumps(json.loads(o)["tokens"]) for o in outs}
    assert len(texts) == 1


@pytest.mark.parametrize("n", ["1", "7", "16", "17"])
def test_n_is_never_exceeded(cli, gguf, n):
    for seed in ("1", "2", "3"):
        r = run(cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", n, "-s", seed, "--diffusion-steps", "2", "--json")
        done = json.loads(r.stdout.splitlines()[-1])
        assert len(done["tokens"]) <= int(n)
        assert done["stop"] == "eos" or len(done["tokens"]) == int(n)


def test_random_seed_is_printed_and_reproduces(cli, gguf):
    r = run(cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", "16", "--diffusion-steps", "2")
    seed = re.search(r"diffgemma: seed (\d+)", r.stderr).group(1)
    again = run(cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", "16", "--diffusion-steps", "2", "-s", seed)
    assert again.stdout == r.stdout


def test_visual_fallback_when_not_a_tty(cli, gguf):
    r = run(cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", "20", "-s", "5", "--diffusion-steps", "3",
            "--diffusion-visual")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    steps = [ln for ln in lines if ln.startswith("[canvas ")]
    assert len(steps) >= 2 and re.match(r"\[canvas 0 step 1/3\] \d+/16 accepted, t=0\.800", steps[0])
    m = STATS.search(r.stderr)
    assert m
    assert sum(ln.startswith("[commit ") for ln in lines) == int(m.group(2))
    assert len(steps) == int(m.group(3))
    assert "\x1b[" not in r.stdout  # no escape codes when piped


@pytest.mark.skipif(sys.platform != "linux", reason="pty")
def test_visual_live_view_in_a_terminal(cli, gguf):
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with a terminal as stdout
        os.execv(cli, [cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", "20", "-s", "5", "--diffusion-steps", "3",
                       "--diffusion-visual"])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    text = out.decode("utf-8", errors="replace")
    assert text.count("\x1b8\x1b[J") >= 6  # redraw per step (3 steps x 2 canvases) and per commit
    assert "\x1b[1;32m" in text  # accepted tokens highlighted
    assert re.search(r"step 3/3 · \d+/16 accepted", text)
    assert "diffgemma: prompt 3 tokens" in text  # stats line (stderr shares the terminal)


def test_chat_mode_reuses_the_cache(cli, gguf):
    script = "Hello\nHow are you?\n/clear\nAgain\n/exit\nnot read\n"
    r = run(cli, "-m", gguf, "-cnv", "-n", "16", "-s", "4", "--diffusion-steps", "2", "--json", stdin=script)
    assert r.returncode == 0, r.stderr
    done = [json.loads(ln) for ln in r.stdout.splitlines() if '"type":"done"' in ln]
    assert [d["turn"] for d in done] == [0, 1, 2]
    tok = _core.Tokenizer(gguf)
    first = tok.tokenize(tok.apply_chat_template([{"role": "user", "content": "Hello"}]), add_bos=False)
    assert done[0]["stats"]["prompt_tokens"] == len(first)
    # turn 2 encodes only what is new: the last uncommitted canvas part, <turn|>\n and the new turn
    second_turn = tok.tokenize(tok.apply_chat_template([{"role": "user", "content": "How are you?"}])
                               .replace("<bos>", ""), add_bos=False)
    assert done[1]["stats"]["prompt_tokens"] < len(first) + 16 + 2 + len(second_turn) + 1
    assert done[1]["stats"]["prompt_tokens"] >= len(second_turn) + 2
    # after /clear the conversation starts over: the same prompt size as a first turn
    again = tok.tokenize(tok.apply_chat_template([{"role": "user", "content": "Again"}]), add_bos=False)
    assert done[2]["stats"]["prompt_tokens"] == len(again)


@pytest.mark.parametrize(
    "args,msg",
    [
        (["-n", "0"], "invalid value '0' for -n"),
        (["-n", "abc"], "invalid value 'abc' for -n"),
        (["-s", "-5"], "invalid value '-5' for -s"),
        (["-t", "x"], "invalid value 'x' for -t"),
        (["-c", "-1"], "invalid value '-1' for -c"),
        (["--temp", "0"], "invalid value '0' for --temp"),
        (["--diffusion-steps", "0"], "invalid value '0' for --diffusion-steps"),
        (["--diffusion-entropy-bound", "-1"], "invalid value '-1' for --diffusion-entropy-bound"),
        (["--diffusion-t-min", "nan"], "invalid value 'nan' for --diffusion-t-min"),
        (["--diffusion-t-max", "inf"], "invalid value 'inf' for --diffusion-t-max"),
        (["--diffusion-stability", "1.5"], "invalid value '1.5' for --diffusion-stability"),
        (["--diffusion-confidence", "0"], "invalid value '0' for --diffusion-confidence"),
        (["--diffusion-t-min", "0.9", "--diffusion-t-max", "0.5"], "t_max must be >= t_min"),
        (["--prompt-ids", "1,x"], "invalid value 'x' for --prompt-ids"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--diffusion-steps"], "missing value for --diffusion-steps"),
    ],
)
def test_bad_flag_values_are_one_line_and_exit_2(cli, gguf, args, msg):
    r = run(cli, "-m", gguf, "-p", "hi", *args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and msg in r.stderr and r.stderr.startswith("diffgemma-cli: error: ")
    assert r.stdout == ""


def test_temp_sets_a_constant_temperature(cli, gguf):
    r = run(cli, "-m", gguf, "--prompt-ids", "2,9", "-n", "16", "-s", "1", "--diffusion-steps", "3", "--temp", "0.6",
            "--json")
    temps = [json.loads(ln)["temperature"] for ln in r.stdout.splitlines() if '"draft"' in ln]
    assert temps and all(t == pytest.approx(0.6) for t in temps)


def test_help_explains_the_diffusion_knobs(cli):
    r = run(cli, "--help")
    assert r.returncode == 0
    for flag in ("--diffusion-steps", "--diffusion-entropy-bound", "--diffusion-t-min", "--diffusion-t-max",
                 "--diffusion-stability", "--diffusion-confidence", "--diffusion-visual", "--temp", "-cnv",
                 "--json", "--no-display-prompt", "-sys", "--prompt-ids"):
        assert flag in r.stdout
    assert "t-min = t-max" in r.stdout


def test_ctrl_c_stops_cleanly(cli, gguf):
    import signal
    import time

    p = subprocess.Popen([cli, "-m", gguf, "--prompt-ids", "2,105,9", "-n", "800", "-s", "1", "--diffusion-steps",
                          "48", "--diffusion-confidence", "1e-9", "--ignore-eos"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "[cancelled]" in err
    m = STATS.search(err)
    assert m and m.group(6) == "cancelled"
    assert int(m.group(2)) < 50  # far from the 50 canvases asked for


def test_python_ctrl_c_raises_keyboard_interrupt(gguf):
    import signal
    import time

    code = (
        "import sys\n"
        "from diffgemma import DiffGemma\n"
        f"llm = DiffGemma({gguf!r}, n_threads=1, seed=1)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    llm.generate([2, 105, 9], max_new_tokens=800, eos_token_id=[], confidence_threshold=1e-9)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    r = llm.generate([2, 9], max_new_tokens=4, max_denoising_steps=1, eos_token_id=[])\n"
        "    print('still works', len(r['tokens']), flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert out.split("\n")[:2] == ["interrupted", "still works 4"]


def test_impossible_context_is_one_line_not_an_abort(cli, gguf):
    r = run(cli, "-m", gguf, "-p", "Hi", "-n", "4", "-c", "100000000000")
    assert r.returncode == 1, r.stderr
    last = r.stderr.splitlines()[-1]  # after the "seed" line
    assert last.startswith("diffgemma-cli: error: ") and "out of memory" in last, r.stderr


def test_bad_model_file_is_one_line(cli, gguf, tmp_path):
    bad = tmp_path / "truncated.gguf"
    bad.write_bytes(open(gguf, "rb").read()[:5000])
    r = run(cli, "-m", str(bad), "-p", "Hi")
    assert r.returncode == 1
    assert "diffgemma-cli: error: " in r.stderr and "runs past end of file" in r.stderr
