//! `retalk mcp`: a Model Context Protocol server acting as one retalk
//! identity, for AI agents. Built on the official Rust SDK (`rmcp`, pinned;
//! it is used in this crate only).
//!
//! * [`server`]: the server (tool router, the `retalk://inbox` resource,
//!   subscriptions and logging);
//! * [`tools`]: one module per tool (`id`, `contacts`, `add`, `verify`,
//!   `block`, `send`, `receive`, `wait`, `history`, `sync`, and the rooms:
//!   `groups`, `group_create`, `group_add`, `group_remove`, `group_rename`,
//!   `group_leave`, `group_join`, `group_delete`);
//! * `push`: the task announcing new mail while the server runs;
//! * [`error`]: tool errors (message, hint, code).
//!
//! The caller opens the identity (the passphrase never reaches the MCP
//! client) and hands it over:
//!
//! ```no_run
//! # async fn f(user: retalk::User) -> Result<(), retalk_mcp::ServeError> {
//! retalk_mcp::serve_stdio(user, retalk_mcp::Options::default()).await
//! # }
//! ```

pub mod error;
mod push;
pub mod server;
pub mod tools;

pub use error::ToolError;
pub use server::{Options, RetalkServer, INBOX_URI};

use retalk::User;
use rmcp::service::{RoleServer, ServiceExt};
use rmcp::transport::IntoTransport;
use tokio_util::sync::CancellationToken;

/// Why serving stopped with an error.
#[derive(Debug)]
pub struct ServeError(String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// Serves MCP over `transport` (anything rmcp takes: a pair of async
/// reader and writer, a duplex stream...) until the client goes away.
/// The push task is stopped at the end, after a fetch under way finished.
pub async fn serve<T, E, A>(user: User, options: Options, transport: T) -> Result<(), ServeError>
where
    T: IntoTransport<RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let server = RetalkServer::new(user, options);
    let shared = server.shared.clone();
    let stop = CancellationToken::new();
    let push = options
        .push
        .then(|| tokio::spawn(push::run(shared, stop.clone())));
    let result = match server.serve(transport).await {
        Ok(running) => running
            .waiting()
            .await
            .map(|_| ())
            .map_err(|e| ServeError(format!("the MCP session failed: {e}"))),
        Err(e) => Err(ServeError(format!(
            "the MCP client did not start a session: {e}"
        ))),
    };
    stop.cancel();
    if let Some(p) = push {
        let _ = p.await;
    }
    result
}

/// Serves MCP on stdin/stdout (stdout carries nothing but the protocol).
pub async fn serve_stdio(user: User, options: Options) -> Result<(), ServeError> {
    serve(user, options, rmcp::transport::stdio()).await
}

/// Sends this process's logs to stderr (stdout is the protocol's). The
/// filter is `RETALK_LOG` (tracing's env-filter syntax), default `info`.
/// rmcp's own messages are capped at info whatever the filter says: at
/// debug it logs whole tool results, which hold message text.
pub fn log_to_stderr() {
    use tracing_subscriber::EnvFilter;
    let spec = std::env::var("RETALK_LOG").unwrap_or_else(|_| "info".into());
    let mut filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    if spec.contains("debug") || spec.contains("trace") {
        if let Ok(cap) = "rmcp=info".parse() {
            filter = filter.add_directive(cap);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
