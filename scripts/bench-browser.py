#!/usr/bin/env python3
"""Browser benchmark: serves a model folder with `native-trainer serve`, opens www/bench.html in headless
Chromium (through chromedriver, plain WebDriver over HTTP) and prints the page's JSON result: model load
time, tweets/s and p50/p95 latency per classify call for each batch size.

  scripts/bench-browser.py RUN_DIR [--backend cpu|webgpu|auto] [--n 512] [--batch 1,32] [--workers 1|all] [--file tweets.csv]
        [--profile] [--chrome-arg SWITCH]

Build the release package first (scripts/build-wasm.sh). With --file, the tweets come from that file
(e.g. ../shared/data/tweepfake/validation.csv); otherwise the page's example tweets are repeated.
"""
import argparse, json, os, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webdriver(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)["value"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--workers", default="1", help="classifier workers: a number, or all (one per core, at most 4)")
    parser.add_argument("--profile", action="store_true", help="also time each kernel of a pass over 8 tweets (median of 7 passes)")
    parser.add_argument("--chrome-arg", action="append", default=[],
                        help="an extra Chromium switch, e.g. --chrome-arg=--js-flags=--no-enable-avx-vnni (V8 then lowers "
                             "wasm as on a CPU without VNNI: the kernel race as such CPUs see it)")
    parser.add_argument("--file")
    parser.add_argument("--timeout", type=int, default=1200)
    args = parser.parse_args()

    trainer = os.environ.get("NATIVE_TRAINER", os.path.join(ROOT, "target/debug/native-trainer"))
    server = subprocess.Popen([trainer, "serve", "--quiet", "--port", "0", "--model", args.model], stdout=subprocess.PIPE, text=True)
    url = next(w for w in server.stdout.readline().split() if w.startswith("http://127.0.0.1:"))
    port = free_port()
    driver = subprocess.Popen([os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"), f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        profile = tempfile.mkdtemp(prefix="tg-bench-")
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": [
            "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", f"--user-data-dir={profile}",
            "--disable-background-networking", "--disable-component-update", "--no-first-run"] + args.chrome_arg}}}}
        session = webdriver(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        autorun = "0" if args.file else "1"
        webdriver(base, "POST", s + "/url", {"url": f"{url}bench.html?n={args.n}&backend={args.backend}&batch={args.batch}&workers={args.workers}&profile={int(args.profile)}&autorun={autorun}&sw=0"})
        if args.file:
            element = webdriver(base, "POST", s + "/element", {"using": "css selector", "value": "[data-testid=bench-file]"})
            element_id = next(iter(element.values()))
            webdriver(base, "POST", f"{s}/element/{element_id}/value", {"text": os.path.abspath(args.file)})
            time.sleep(1.0)
            run = webdriver(base, "POST", s + "/element", {"using": "css selector", "value": "[data-testid=bench-run]"})
            webdriver(base, "POST", f"{s}/element/{next(iter(run.values()))}/click", {})
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            state = webdriver(base, "POST", s + "/execute/sync", {"script": "const r = document.querySelector('[data-testid=bench-result]'); return [r.dataset.state, r.textContent];", "args": []})
            if state[0] in ("done", "error"):
                print(state[1])
                failed = state[0] == "error"
                break
            time.sleep(1.0)
        else:
            sys.exit("the benchmark did not finish in time")
        webdriver(base, "DELETE", s)
        if failed:
            sys.exit(1)
    finally:
        driver.terminate()
        server.terminate()


if __name__ == "__main__":
    main()
