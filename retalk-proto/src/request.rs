//! The request envelope: `{"tool": NAME, "args": {...business args...,
//! "auth": {...}}}`, POSTed to the relay's URL.

use serde_json::{Map, Value};

use super::auth::{Auth, AuthError, Dialect, RequestSigner};
use super::canonical::args_sha256;
use super::error::WireError;
use super::ids::Nonce;
use super::tools::{Call, Tool};

mod fast;

/// A request as a relay receives it, before its signature is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRequest {
    /// The parsed tool call.
    pub call: Call,
    /// The parsed `auth` object.
    pub auth: Auth,
    /// sha256 of the canonical business args, as received (what the
    /// signature must cover).
    pub args_sha256: String,
}

impl SignedRequest {
    /// Parses a request body. Errors say what is wrong; nothing about the
    /// signature is checked yet (see [`Auth::verify`]).
    ///
    /// The common case (a `send_message` in the shape clients write it)
    /// takes a fast path that builds no JSON tree; the result is the same
    /// (see `request/fast.rs`).
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        match fast::parse_send(body) {
            Some(request) => Ok(request),
            None => Self::parse_general(body),
        }
    }

    /// [`SignedRequest::parse`] without the fast path: any request, through
    /// a `serde_json::Value`. Public for the differential tests and the
    /// benchmarks.
    pub fn parse_general(body: &[u8]) -> Result<Self, WireError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| WireError::BadRequest(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(mut envelope) = value else {
            return Err(WireError::BadRequest(
                "request body must be a JSON object {\"tool\": ..., \"args\": {...}}".into(),
            ));
        };
        let tool = match envelope.remove("tool") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(WireError::BadRequest("\"tool\" must be a string".into())),
            None => return Err(WireError::BadRequest("missing \"tool\"".into())),
        };
        let mut args = match envelope.remove("args") {
            Some(Value::Object(a)) => a,
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(WireError::BadRequest("\"args\" must be an object".into())),
        };
        let auth = args.remove("auth");
        let call = Call::parse(&tool, &args)?;
        let auth = Auth::parse(auth.as_ref().ok_or(AuthError::Missing)?)?;
        let args_sha256 = args_sha256(&args)?;
        Ok(SignedRequest {
            call,
            auth,
            args_sha256,
        })
    }
}

/// Builds the body of a signed call to `tool`.
pub fn build_request<T: Tool>(
    tool: &T,
    signer: &dyn RequestSigner,
    audience: &str,
    dialect: Dialect,
    now_secs: i64,
) -> Result<Vec<u8>, WireError> {
    let mut args = tool.to_args();
    let hash = args_sha256(&args)?;
    let auth = Auth::sign(signer, T::NAME, audience, &hash, now_secs, Nonce::random())?;
    args.insert("auth".into(), auth.to_value(dialect));
    let mut envelope = Map::new();
    envelope.insert("tool".into(), T::NAME.into());
    envelope.insert("args".into(), Value::Object(args));
    Ok(serde_json::to_vec(&Value::Object(envelope)).expect("JSON values always serialize"))
}
