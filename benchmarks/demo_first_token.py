"""Time to first visible token in the demo's chat tab, on the embedded model, in Chromium.

    python benchmarks/demo_first_token.py [--runs 10] [--out benchmarks/demo_first_token.md]

Starts `demos/app.py` (the embedded SmolLM2-135M, the hashing embedder so that indexing the
docs does not compete for the CPU), opens the chat tab in Chromium, and asks "What is 17 * 23?"
`--runs` times, each in a new conversation. For each run it records, in the page's own clock:

- first token: from the click on Send until the first character of step 1's thought is on
  screen (the step panel shows text under its title);
- answer: from the click until the status line says the run ended.

The first run (cold: the model's weights load and the prompt prefix is not cached yet) is
reported on its own; the median is over the runs after it. Bounded: each run times out after
300 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
TASK = "What is 17 * 23?"

# Runs in the page: resolves with the milliseconds from the click to the first thought text.
WATCH = """
() => new Promise((resolve) => {
  const chat = document.querySelector('#agent-chat');
  const started = performance.now();
  const seen = () => {
    const text = chat.innerText;
    const at = text.lastIndexOf('Step 1 · ');
    if (at >= 0) {
      const lines = text.slice(at).split('\\n').map((line) => line.trim()).filter(Boolean);
      // lines[0] is the panel's title; anything after it is the streamed thought.
      if (lines.length > 1 && !lines[1].startsWith('Run details')) {
        resolve(performance.now() - started);
        return;
      }
    }
    requestAnimationFrame(seen);
  };
  document.querySelector('#chat-send').click();
  seen();
})
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "AGENTLIB_DEMO_EMBEDDER": "hashing",
        "HF_HUB_OFFLINE": "1",
    }
    server = subprocess.Popen([sys.executable, str(ROOT / "demos" / "app.py")], env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the demo app did not start within 300 s")


def measure(runs: int) -> list[tuple[float, float, str]]:
    """(first token s, answer s, the answer's text) per run."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = _serve(port)
    results = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(300_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#chat-input textarea")
            for _ in range(runs):
                page.get_by_role("button", name="New conversation").click()
                page.wait_for_function(
                    "!document.querySelector('#agent-chat').innerText.includes('Step 1')"
                )
                page.fill("#chat-input textarea", TASK)
                began = time.perf_counter()
                first = page.evaluate(WATCH) / 1000
                page.locator("#chat-status").get_by_text("Answered").or_(
                    page.locator("#chat-status").get_by_text("Stopped")
                ).wait_for()
                answered = time.perf_counter() - began
                status = page.locator("#chat-status").inner_text()
                results.append((first, answered, status))
                print(f"first token {first:.2f} s, answer {answered:.1f} s: {status}", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return results


def report(results: list[tuple[float, float, str]], command: str) -> str:
    """The results as Markdown."""
    cold, warm = results[0], results[1:]
    firsts = [first for first, _, _ in warm]
    answers = [answer for _, answer, _ in warm]
    answered = sum("Answered" in status for _, _, status in results)
    lines = [
        "# Time to first visible token in the demo's chat tab",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}; the embedded SmolLM2-135M on llama.cpp, 1 thread.",
        "",
        "| | first token (s) | whole answer (s) |",
        "| --- | --- | --- |",
        f"| cold (first run) | {cold[0]:.2f} | {cold[1]:.1f} |",
        f"| median of the next {len(warm)} | {statistics.median(firsts):.2f} | "
        f"{statistics.median(answers):.1f} |",
        f"| slowest of the next {len(warm)} | {max(firsts):.2f} | {max(answers):.1f} |",
        "",
        f"{answered} of {len(results)} runs answered. First token: from the click on Send "
        "until step 1's thought shows its first characters in the chat, measured in the page.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="measured runs after the cold one")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    args = parser.parse_args()
    results = measure(args.runs + 1)
    text = report(results, "python benchmarks/demo_first_token.py " + " ".join(sys.argv[1:]))
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
