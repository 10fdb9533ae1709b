//! The library behind the `native-trainer` command (`src/main.rs` holds only its command line): data
//! ([`data`], [`input`]), the trainable model, its optimiser and one training step ([`trainable`], [`optim`],
//! [`step`], on the [`device`] chosen), the commands
//! ([`train`], [`cv`], [`eval`], [`export`], [`predict`], [`bench`], [`serve`]) and what they write
//! ([`model_folder`], [`cv_report`], [`checkpoint`], [`output`], [`history`], [`plots`]); TweepFake's
//! persona families ([`families`]). A library so that the fuzz targets
//! (`fuzz/`) and the tests can call the readers directly.

pub mod bench;
pub mod checkpoint;
pub mod cv;
pub mod cv_report;
pub mod data;
pub mod device;
pub mod eval;
pub mod evaluation;
pub mod export;
pub mod families;
pub mod history;
pub mod input;
pub mod logging;
pub mod metrics;
pub mod model_dir;
pub mod model_folder;
pub mod optim;
pub mod output;
pub mod plots;
pub mod predict;
pub mod serve;
pub mod step;
pub mod train;
pub mod trainable;
