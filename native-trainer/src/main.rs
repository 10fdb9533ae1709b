//! `native-trainer`: the command line of tweetguard. Today: `predict` (classify texts with a model folder).
//! Training, evaluation, export, benchmarks and serving the page build on the same core crate.

mod input;
mod model_dir;
mod predict;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "native-trainer", version, about = "Train, evaluate and run tweetguard's BERT bot detector")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify texts, writing one JSON line per text.
    Predict(predict::PredictArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(args) => predict::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
