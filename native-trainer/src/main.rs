//! `native-trainer`: the command line of tweetguard: `train` (fine-tune, evaluate, calibrate, export the
//! model folder), `cv` (grouped cross-validation of a recipe), `export` (an HF checkpoint to the browser's model folder), `eval` (metrics of a model folder
//! on labelled data), `predict` (classify texts), `bench` (speed of training and inference) and `serve` (the
//! web page with a model), all on the core crate.

use native_trainer::{bench, cv, eval, export, logging, predict, serve, train};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "native-trainer", version, about = "Train, evaluate and run tweetguard's BERT bot detector")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tune a BERT checkpoint on bot/human tweets, evaluate, calibrate and export the model folder.
    Train(Box<train::TrainArgs>),
    /// Grouped cross-validation of a training recipe: folds by persona family, each fold's int8 model scored
    /// on accounts it never saw and on held-out tweets of accounts it saw.
    Cv(Box<cv::CvArgs>),
    /// Evaluate a model folder on a labelled file (accuracy, precision, recall, F1, MCC, per-class report).
    Eval(eval::EvalArgs),
    /// Export a fine-tuned HF classification checkpoint as the model folder the browser loads.
    Export(Box<export::ExportArgs>),
    /// Classify texts, writing one JSON line per text.
    Predict(predict::PredictArgs),
    /// Serve the web page with a model folder mounted at /model/ on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// Time training steps and inference on random weights of a given shape, or a model folder on real texts.
    Bench(Box<bench::BenchArgs>),
}

/// Keeps freed memory in the process for reuse. A training step frees and reallocates the same large
/// tensors (activations, gradients, the 47 MB word-embedding gradient of MiniLM) every step; by default
/// glibc returns blocks over 32 MB, and the top of the heap, to the kernel, which then page-faults and
/// zeroes them again and interrupts the other core to flush its TLB. Measured on 2 cores (MiniLM shape, seq
/// 64, batch 32, `bench --mode train`): 19.8 samples/s before, 25.8 after.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn main() {
    keep_freed_memory();
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Cv(args) => cv::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(*args),
        Command::Predict(args) => predict::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(*args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
