//! The crate's one error type. Every failure a user can cause (bad config, corrupt weights, a tokenizer
//! that does not fit the model) maps to a variant with a message that says what to fix.

/// Errors from loading a model or classifying texts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config.json` is not valid JSON or describes a model this crate cannot run.
    #[error("invalid model config: {0}")]
    Config(String),
    /// `tokenizer.json` cannot be parsed or does not fit the model.
    #[error("invalid tokenizer: {0}")]
    Tokenizer(String),
    /// The weights file is corrupt, truncated, or does not match the config.
    #[error("invalid weights: {0}")]
    Weights(String),
    /// `manifest.json` is malformed, or a file differs from its listing there.
    #[error("model manifest: {0}")]
    Manifest(String),
    /// The caller passed something the API cannot act on.
    #[error("invalid input: {0}")]
    Input(String),
    /// A backend failed while running the model.
    #[error("inference failed on the {backend} backend: {message}")]
    Backend { backend: &'static str, message: String },
}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn cpu(err: impl std::fmt::Display) -> Self {
        Error::Backend { backend: "cpu", message: err.to_string() }
    }
}
