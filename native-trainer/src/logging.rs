//! Logs and progress bars that share one terminal. `tracing` events go to stderr through
//! `tracing-subscriber`'s fmt layer, level from `RUST_LOG` (default `info`); progress bars are drawn by
//! indicatif. Every log line is written with the bars suspended (cleared, then redrawn below it), so a line
//! never lands in the middle of a bar. Results meant for the user (eval's report, predict's JSON, bench's
//! table) go to stdout and do not pass through here.

use std::io::{IsTerminal, Write};
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// Every progress bar of the process, drawn on stderr (hidden when stderr is not a terminal).
static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| StderrBelowBars)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// A progress bar of `len` steps in the given indicatif template, drawn below the log lines.
pub fn progress_bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template).expect("a valid progress bar template");
    BARS.add(ProgressBar::new(len).with_style(style))
}

/// stderr, written while the bars are suspended. The fmt layer hands over each event in one `write`.
struct StderrBelowBars;

impl Write for StderrBelowBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BARS.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
