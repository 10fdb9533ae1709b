//! `native-trainer`: the command line of tweetguard: `train` (fine-tune, evaluate, calibrate, export the
//! model folder), `export` (an HF checkpoint to the browser's model folder), `eval` (metrics of a model folder
//! on labelled data), `predict` (classify texts), `bench` (speed of training and inference) and `serve` (the
//! web page with a model), all on the core crate.

mod bench;
mod checkpoint;
mod data;
mod eval;
mod export;
mod export_cmd;
mod history;
mod input;
mod logging;
mod metrics;
mod model_dir;
mod optim;
mod plots;
mod predict;
mod serve;
mod train;
mod trainable;

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
    /// Evaluate a model folder on a labelled file (accuracy, precision, recall, F1, MCC, per-class report).
    Eval(eval::EvalArgs),
    /// Export a fine-tuned HF classification checkpoint as the model folder the browser loads.
    Export(Box<export_cmd::ExportArgs>),
    /// Classify texts, writing one JSON line per text.
    Predict(predict::PredictArgs),
    /// Serve the web page with a model folder mounted at /model/ on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// Time training steps and inference on random weights of a given shape, or a model folder on real texts.
    Bench(Box<bench::BenchArgs>),
}

fn main() {
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export_cmd::run(*args),
        Command::Predict(args) => predict::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(*args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
