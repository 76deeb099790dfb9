//! Operational logs of the live processes (`khaos node`, `khaos serve`): what went wrong and why,
//! through `tracing`, on stderr. They are kept apart from the history (stdout, or `--history`),
//! which the checkers read and which stays byte-stable; a log line never enters it.
//!
//! `RUST_LOG` chooses what is shown (`RUST_LOG=debug` adds kube's requests and retries); without
//! it, warnings and errors are, so a failed request is never silent. `--log-json` writes one JSON
//! object a line, for a log collector.

use tracing_subscriber::EnvFilter;

/// What is shown without `RUST_LOG`.
pub const DEFAULT_FILTER: &str = "warn";

/// Install the process's subscriber: stderr, filtered by `RUST_LOG` (else [`DEFAULT_FILTER`]),
/// as text or as JSON lines. Only the live subcommands call this: a simulated run's candidates
/// fail requests by design, and their story is the history.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, none in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second call (a test that runs two nodes in one process) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
