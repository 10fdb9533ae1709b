//! End-to-end tests of the web page in real headless Chromium, driven through chromedriver (WebDriver):
//! `native-trainer export` makes a model folder from the tiny fixture BERT, `native-trainer serve` serves
//! it with the page, and the tests paste tweets, classify, and compare every label and score with
//! `native-trainer predict` on the same model. They also check that markup in tweets stays inert text,
//! that nothing is requested outside the page's origin, that the CSV export neutralises formulas, that
//! Cancel stops a 10,000-tweet run and keeps the model, that a dropped CSV reports its bad rows by line,
//! that a 100,000-line file is counted, paged (one page of rows in the DOM) and exported whole, and that
//! a tampered model file is refused with a clear message. Screenshots go to `target/e2e/`.
//!
//! Needs `www/pkg` (scripts/build-wasm.sh; scripts/test.sh builds it in the test profile), chromium and
//! chromedriver. Outside CI a missing piece skips the test with a message; with `CI=true` it fails.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn artifacts() -> PathBuf {
    let dir = workspace().join("target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The programs and files the test needs, or `None` (after saying why) when they are missing outside CI.
struct Prerequisites {
    chromedriver: PathBuf,
    chromium: Option<PathBuf>,
    tweepfake: PathBuf,
}

fn prerequisites() -> Option<Prerequisites> {
    let chromedriver =
        std::env::var_os("CHROMEDRIVER").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromedriver".into());
    let chromium = std::env::var_os("CHROME_BIN").map(PathBuf::from);
    let tweepfake = std::env::var_os("TWEEPFAKE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data/tweepfake"));
    let missing = if !chromedriver.is_file() {
        Some(format!("chromedriver ({}; set CHROMEDRIVER)", chromedriver.display()))
    } else if !workspace().join("www/pkg/tweetguard_bg.wasm").is_file() {
        Some("www/pkg (run scripts/build-wasm.sh --dev)".to_string())
    } else if !tweepfake.join("validation.csv").is_file() {
        Some(format!("{}/validation.csv", tweepfake.display()))
    } else {
        None
    };
    match missing {
        None => Some(Prerequisites { chromedriver, chromium, tweepfake }),
        Some(what) => {
            assert!(std::env::var("CI").is_err(), "CI=true but the page tests cannot run: missing {what}");
            eprintln!("SKIPPED page end-to-end tests: missing {what}");
            None
        }
    }
}

/// A child process killed when the test ends, pass or fail.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_native-trainer"))
}

/// Exports the tiny fixture BERT into `out` (calibrated on 64 validation tweets), as a user would.
fn export_tiny(out: &Path, tweepfake: &Path) {
    let output = trainer()
        .args(["export", "--eval-limit", "64", "--overwrite-output-dir", "--model"])
        .arg(workspace().join("tests/fixtures/tiny"))
        .arg("--output-dir")
        .arg(out)
        .arg("--validation-file")
        .arg(tweepfake.join("validation.csv"))
        .output()
        .unwrap();
    assert!(output.status.success(), "export failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// `native-trainer serve` on a free port; returns the process and the page's URL.
fn serve(model: &Path) -> (Process, String) {
    let mut child = trainer()
        .args(["serve", "--port", "0", "--quiet", "--model"])
        .arg(model)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep reading so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("serve printed {line:?}"));
    (Process(child), url.to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts a WebDriver server (chromedriver or geckodriver) on a free port and waits until it answers.
fn start_webdriver(path: &Path) -> (Process, String) {
    let port = free_port();
    let child =
        Command::new(path).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(format!("{url}/status")).call().is_err() {
        assert!(Instant::now() < deadline, "{} did not start on port {port}", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    (Process(child), url)
}

async fn open_browser(driver: &str, chromium: Option<&Path>, profile: &Path, downloads: &Path) -> Client {
    let mut options = json!({
        "args": [
            "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.display()),
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
            // Any host but the test server fails to resolve: an outside request could not succeed.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ],
        "prefs": {
            "download.default_directory": downloads.display().to_string(),
            "download.prompt_for_download": false,
        },
    });
    if let Some(binary) = chromium {
        options["binary"] = json!(binary.display().to_string());
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver)
        .await
        .expect("chromedriver refused the session")
}

/// Polls a JS expression until it is truthy; on timeout fails with the page's state for diagnosis.
async fn wait_for(client: &Client, condition: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let value = client.execute(&format!("return ({condition});"), vec![]).await.unwrap();
        if !(value.is_null() || value == json!(false) || value == json!(0) || value == json!("")) {
            return value;
        }
        if Instant::now() > deadline {
            let state = client.execute(PAGE_STATE, vec![]).await.unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for `{condition}`; page state: {state:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PAGE_STATE: &str = r#"
const q = id => document.querySelector(`[data-testid="${id}"]`);
return {
  app: document.body.dataset.appState,
  status: q('model-status')?.textContent,
  error: q('error-message')?.textContent,
  summary: q('summary') && { ...q('summary').dataset, text: q('summary').textContent },
  rows: document.querySelectorAll('[data-testid="result-row"]').length,
};"#;

const READ_ROWS: &str = r#"
return [...document.querySelectorAll('[data-testid="result-row"]')].map(row => ({
  index: Number(row.dataset.index),
  label: row.dataset.label,
  score: Number(row.dataset.score),
  truncated: row.dataset.truncated === 'true',
  text: row.querySelector('[data-testid="result-text"]').textContent,
}));"#;

async fn testid(client: &Client, id: &str) -> fantoccini::elements::Element {
    client
        .find(Locator::Css(&format!("[data-testid=\"{id}\"]")))
        .await
        .unwrap_or_else(|e| panic!("no [data-testid={id}]: {e}"))
}

/// Puts text in the tweet box as a paste would (one input event).
async fn paste(client: &Client, text: &str) {
    client
        .execute(
            "const box = document.querySelector('[data-testid=\"tweet-input\"]'); box.focus(); box.value = arguments[0];
             box.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![json!(text)],
        )
        .await
        .unwrap();
}

/// Waits until the run's summary is in one of `states` (`done`, `cancelled`, ...).
async fn wait_for_run(client: &Client, states: &[&str], timeout: Duration) {
    let condition =
        format!("{}.includes(document.querySelector('[data-testid=\"summary\"]')?.dataset.state)", json!(states));
    wait_for(client, &condition, timeout).await;
}

async fn classify_and_wait(client: &Client) -> Vec<Value> {
    testid(client, "classify-button").await.click().await.unwrap();
    wait_for_run(client, &["done"], Duration::from_secs(120)).await;
    client.execute(READ_ROWS, vec![]).await.unwrap().as_array().unwrap().clone()
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Tweets that exercise the page: markup that must stay text, formulas, emoji, right-to-left script,
/// a mention, a URL and one tweet far over the 128-token limit.
fn tricky_tweets() -> Vec<String> {
    let mut tweets: Vec<String> = [
        r#"<img src=x onerror="window.__pwned = 1">"#,
        "<script>window.__pwned = 2</script>free followers now",
        "=HYPERLINK(\"http://example.invalid\",\"click\")",
        "@someone thanks for the follow! see you at the match",
        "Just finished my morning run, legs are jelly but worth it",
        "Can't believe the game last night!!! What a finish 🏀🔥",
        "مرحبا بالعالم this is mixed text",
        "Listen to this charming song by The Smiths https://t.co/example",
        "-5 degrees this morning, +3 by noon",
    ]
    .map(String::from)
    .to_vec();
    tweets.push(["the quick brown fox jumps over the lazy dog"; 40].join(" "));
    tweets
}

fn cli_predictions(model: &Path, tweets: &[String], dir: &Path) -> Vec<Value> {
    let input = dir.join("tweets.txt");
    std::fs::write(&input, tweets.join("\n")).unwrap();
    let output = trainer()
        .args(["predict", "--backend", "cpu", "--model"])
        .arg(model)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(output.status.success(), "predict failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Pastes the tricky tweets (with an empty line, which is skipped), classifies them, and checks that every
/// row's text, label, score and truncation flag equal `native-trainer predict` on the same model.
async fn classify_like_the_cli(client: &Client, run: &Path, dir: &Path) -> Vec<Value> {
    let tweets = tricky_tweets();
    let mut pasted = tweets.clone();
    pasted.insert(3, String::new()); // an empty line: skipped, not classified
    paste(client, &pasted.join("\n")).await;
    let rows = classify_and_wait(client).await;
    let expected = cli_predictions(run, &tweets, dir);
    assert_eq!(rows.len(), tweets.len(), "one row per non-empty line");
    for (i, (row, want)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row["index"], json!(i));
        assert_eq!(row["text"].as_str().unwrap(), tweets[i], "row {i} text");
        assert_eq!(row["label"], want["label"], "row {i}: {}", tweets[i]);
        let (got, want_score) = (row["score"].as_f64().unwrap(), want["score"].as_f64().unwrap());
        assert!((got - want_score).abs() < 1e-4, "row {i}: page score {got} vs CLI {want_score}");
        assert_eq!(row["truncated"], want["truncated"], "row {i}");
    }
    rows
}

fn headers_of(url: &str) -> ureq::http::Response<ureq::Body> {
    ureq::get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[test]
fn page_classifies_like_the_cli_and_stays_safe() {
    let Some(pre) = prerequisites() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    export_tiny(&run, &pre.tweepfake);
    let (_server, url) = serve(&run);

    // The server's side of the promise: isolation, a same-origin CSP, wasm served as wasm, and only the
    // manifest's files under /model/.
    let page = headers_of(&url);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(page.headers()["cross-origin-embedder-policy"], "require-corp");
    assert_eq!(page.headers()["cross-origin-opener-policy"], "same-origin");
    assert_eq!(headers_of(&format!("{url}pkg/tweetguard_bg.wasm")).headers()["content-type"], "application/wasm");
    assert!(ureq::get(format!("{url}model/../../Cargo.toml")).call().is_err());

    let (_driver, driver_url) = start_webdriver(&pre.chromedriver);
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = open_browser(&driver_url, pre.chromium.as_deref(), &tmp.path().join("profile"), &downloads).await;
        client.goto(&url).await.unwrap();
        wait_for(&client, "document.body.dataset.appState === 'ready'", Duration::from_secs(120)).await;

        // Labels and scores equal the CLI's on the same model; markup is shown as text and never runs.
        let tweets = tricky_tweets();
        let rows = classify_like_the_cli(&client, &run, tmp.path()).await;
        assert_eq!(rows.last().unwrap()["truncated"], json!(true), "the long tweet is marked truncated");
        let injected = client
            .execute("return [window.__pwned ?? null, document.querySelectorAll('[data-testid=\"results\"] img, [data-testid=\"results\"] script').length];", vec![])
            .await
            .unwrap();
        assert_eq!(injected, json!([null, 0]), "markup in a tweet became live HTML");
        let summary = testid(&client, "summary").await;
        assert_eq!(summary.attr("data-count").await.unwrap().as_deref(), Some(tweets.len().to_string().as_str()));
        let backend = testid(&client, "backend-used").await.attr("data-backend").await.unwrap();
        assert_eq!(backend.as_deref(), Some("cpu"));
        screenshot(&client, "page.png").await;

        // Explanation by occlusion: one weight per word, each with a signed delta.
        client.find(Locator::Css("[data-testid=\"result-row\"] [data-testid=\"explain-button\"]")).await.unwrap().click().await.unwrap();
        let words = wait_for(
            &client,
            "document.querySelectorAll('[data-testid=\"result-row\"] [data-testid=\"explanation\"] [data-delta]').length",
            Duration::from_secs(60),
        )
        .await;
        assert!(words.as_u64().unwrap() >= 3, "explanation has {words} words");

        // The CSV download: one row per tweet, formulas and @mentions neutralised.
        testid(&client, "download-csv").await.click().await.unwrap();
        let csv = wait_for_download(&downloads).await;
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), tweets.len());
        assert_eq!(&records[2][0], "'=HYPERLINK(\"http://example.invalid\",\"click\")");
        assert_eq!(&records[3][0], "'@someone thanks for the follow! see you at the match");
        assert_eq!(&records[8][0], "'-5 degrees this morning, +3 by noon");
        assert_eq!(&records[4][0], tweets[4]);

        // Nothing the page loaded came from outside its origin.
        let foreign = client
            .execute("return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin + '/'));", vec![])
            .await
            .unwrap();
        assert_eq!(foreign, json!([]), "requests outside the origin");

        // Cancel stops a large run between batches and keeps the model loaded.
        let many: Vec<String> = (0..10_000).map(|i| format!("tweet number {i} about the weather and football")).collect();
        paste(&client, &many.join("\n")).await;
        testid(&client, "classify-button").await.click().await.unwrap();
        wait_for(&client, "document.querySelectorAll('[data-testid=\"result-row\"]').length > 0", Duration::from_secs(60)).await;
        testid(&client, "cancel-button").await.click().await.unwrap();
        wait_for_run(&client, &["cancelled"], Duration::from_secs(30)).await;
        let done = classified_count(&client).await;
        assert!(done < 10_000, "cancel did not stop the run ({done} tweets classified)");
        paste(&client, "one more tweet\nand another").await;
        assert_eq!(classify_and_wait(&client).await.len(), 2, "the model stays usable after cancel");

        // A dropped TweepFake-style file: `;` sniffed, quotes honoured, a bad row reported by line number.
        let file = tmp.path().join("tweets.csv");
        std::fs::write(
            &file,
            "screen_name;text;account.type;class_type\nalice;\"hello; world\";human;human\nbob;broken row\ncarol;\"a \"\"quoted\"\" word\";bot;rnn\n",
        )
        .unwrap();
        testid(&client, "file-input").await.send_keys(&file.display().to_string()).await.unwrap();
        let report = wait_for(&client, "document.querySelector('[data-testid=\"file-report\"]').textContent.match(/line 3/)?.[0]", Duration::from_secs(10)).await;
        assert_eq!(report, json!("line 3"));
        let rows = classify_and_wait(&client).await;
        let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["hello; world", "a \"quoted\" word"]);

        // A big file is parsed off the UI thread and only one page of rows is ever in the DOM, while the
        // summary counts every tweet and the CSV download holds every classified one.
        big_file_is_paged(&client, tmp.path(), &downloads).await;

        client.set_window_size(375, 900).await.unwrap();
        screenshot(&client, "page-phone.png").await;
        client.close().await.unwrap();
    });
}

/// How many tweets the current run has classified, as the summary counts them (not the rows in the DOM).
const CLASSIFIED_COUNT: &str = "Number(document.querySelector('[data-testid=\"summary\"]').dataset.count)";

async fn classified_count(client: &Client) -> u64 {
    client.execute(&format!("return {CLASSIFIED_COUNT};"), vec![]).await.unwrap().as_u64().unwrap()
}

async fn big_file_is_paged(client: &Client, dir: &Path, downloads: &Path) {
    const ROWS: usize = 100_000;
    const PAGE: u64 = 200; // www/results.js RESULTS_PAGE_SIZE
    let file = dir.join("big.txt");
    let lines: Vec<String> = (0..ROWS).map(|i| format!("tweet {i} of a big file, about rain and the match")).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    testid(client, "file-input").await.send_keys(&file.display().to_string()).await.unwrap();
    let report = wait_for(
        client,
        "document.querySelector('[data-testid=\"file-report\"]').textContent.match(/^big\\.txt: ([0-9,]+) tweets/)?.[1]",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(report, json!("100,000"), "the file report counts every line");

    testid(client, "classify-button").await.click().await.unwrap();
    wait_for(client, &format!("{CLASSIFIED_COUNT} > {}", 2 * PAGE), Duration::from_secs(120)).await;
    let rows = client.execute(READ_ROWS, vec![]).await.unwrap();
    let indices: Vec<u64> = rows.as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, (0..PAGE).collect::<Vec<_>>(), "page 1 shows exactly the first {PAGE} tweets");

    testid(client, "page-next").await.click().await.unwrap();
    let rows = client.execute(READ_ROWS, vec![]).await.unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len() as u64, PAGE, "page 2 holds one page of rows");
    assert_eq!(rows[0]["index"], json!(PAGE));
    assert_eq!(rows[0]["text"], json!(lines[PAGE as usize]));
    let status = testid(client, "page-status").await.text().await.unwrap();
    assert!(status.starts_with("Tweets 201–400 of 100,000"), "{status}");

    // Cancel (a fast machine may have finished all of them already: then the CSV holds them all).
    testid(client, "cancel-button").await.click().await.unwrap();
    wait_for_run(client, &["cancelled", "done"], Duration::from_secs(30)).await;
    let classified = classified_count(client).await;
    assert!(classified > 2 * PAGE && classified <= ROWS as u64, "{classified} tweets classified before cancel");
    let dom_rows = client
        .execute("return document.querySelectorAll('[data-testid=\"result-row\"]').length;", vec![])
        .await
        .unwrap();
    assert_eq!(dom_rows, json!(PAGE), "rows beyond the page shown never enter the DOM");

    for old in std::fs::read_dir(downloads).unwrap() {
        std::fs::remove_file(old.unwrap().path()).unwrap();
    }
    testid(client, "download-csv").await.click().await.unwrap();
    let csv = wait_for_download(downloads).await;
    let records: Vec<csv::StringRecord> =
        csv::ReaderBuilder::new().from_reader(csv.as_bytes()).records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len() as u64, classified, "the CSV holds every classified tweet, not just the page shown");
    assert_eq!(&records[records.len() - 1][0], lines[classified as usize - 1]);
}

async fn wait_for_download(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        if let [file] = done.as_slice() {
            return std::fs::read_to_string(file).unwrap();
        }
        assert!(Instant::now() < deadline, "no CSV was downloaded into {}", dir.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_tampered_model_file_is_refused_with_a_clear_message() {
    let Some(pre) = prerequisites() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    export_tiny(&run, &pre.tweepfake);
    let weights = run.join("model/model.int8.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&weights, bytes).unwrap();
    let (_server, url) = serve(&run);
    let (_driver, driver_url) = start_webdriver(&pre.chromedriver);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = open_browser(&driver_url, pre.chromium.as_deref(), &tmp.path().join("profile"), tmp.path()).await;
        client.goto(&url).await.unwrap();
        wait_for(&client, "document.body.dataset.appState === 'error'", Duration::from_secs(120)).await;
        let message = testid(&client, "error-message").await.text().await.unwrap();
        assert!(message.contains("model.int8.safetensors") && message.contains("SHA-256"), "{message}");
        screenshot(&client, "tampered-model.png").await;
        client.close().await.unwrap();
    });
}

/// Firefox (ESR, through geckodriver) runs the CPU path of the same page with the same answers, when
/// both are installed (scripts/setup.sh installs them); elsewhere the test says it skipped.
#[test]
fn firefox_classifies_on_the_cpu_path_like_the_cli() {
    let Some(pre) = prerequisites() else { return };
    let firefox = std::env::var_os("FIREFOX_BIN").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/firefox-esr".into());
    let geckodriver = std::env::var_os("GECKODRIVER").map(PathBuf::from).or_else(|| which("geckodriver"));
    let (Some(geckodriver), true) = (geckodriver, firefox.is_file()) else {
        assert!(std::env::var("CI").is_err(), "CI=true but firefox-esr or geckodriver is missing");
        eprintln!("SKIPPED Firefox page test: firefox-esr or geckodriver is missing");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    export_tiny(&run, &pre.tweepfake);
    let (_server, url) = serve(&run);
    let (_driver, driver_url) = start_webdriver(&geckodriver);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "moz:firefoxOptions".into(),
            json!({"binary": firefox.display().to_string(), "args": ["-headless", "-width=1280", "-height=1000"]}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("geckodriver refused the session");
        client.goto(&url).await.unwrap();
        wait_for(&client, "document.body.dataset.appState === 'ready'", Duration::from_secs(120)).await;
        classify_like_the_cli(&client, &run, tmp.path()).await;
        let backend = testid(&client, "backend-used").await.attr("data-backend").await.unwrap();
        assert_eq!(backend.as_deref(), Some("cpu"));
        screenshot(&client, "page-firefox.png").await;
        client.close().await.unwrap();
    });
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}
