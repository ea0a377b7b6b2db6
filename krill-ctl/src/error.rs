//! krill-ctl's one error channel: every command returns [`Error`], and `main` prints
//! it and exits with [`Error::exit_code`].

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong (exit code 2, like clap's own usage errors).
    #[error("{0}")]
    Usage(String),
    /// A workspace or service that is not installed.
    #[error("{0}")]
    NotInstalled(String),
    #[error(transparent)]
    Recipe(Box<krill::RecipeError>),
    #[error(transparent)]
    Install(Box<crate::install::Error>),
    #[error(transparent)]
    Status(Box<crate::status::Error>),
    #[error(transparent)]
    Failure(Box<crate::failure::Error>),
    #[error(transparent)]
    Estop(Box<crate::estop::Error>),
    #[error("cannot run journalctl: {0}")]
    Journal(std::io::Error),
    #[error(transparent)]
    Bus(Box<crate::bus::Error>),
    /// The `log_dir:` writer or reader.
    #[error("log files: {0}")]
    LogFiles(String),
    #[error("cannot use the terminal: {0}")]
    Terminal(std::io::Error),
}

impl Error {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Boxed, so that every `Result` of krill-ctl stays small.
macro_rules! boxed_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::$v(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    krill::RecipeError => Recipe,
    crate::install::Error => Install,
    crate::status::Error => Status,
    crate::failure::Error => Failure,
    crate::estop::Error => Estop,
    crate::bus::Error => Bus
);
