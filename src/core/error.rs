//! The one error type of the core, with the stable codes JS sees.

/// Every failure the core can report. The binding maps each variant to a JS `Error` whose
/// `code` is [`Error::code`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The server cannot be reached, the connection dropped, or the service is not connected.
    #[error("{0}")]
    Connection(String),
    /// No reply within `commandTimeoutMs` (or no connection within `connectTimeoutMs`).
    #[error("{0}")]
    Timeout(String),
    /// Redis answered with an error reply (WRONGTYPE, NOPERM, ...); the text is Redis's own.
    #[error("{0}")]
    Reply(String),
    /// The server refused the credentials.
    #[error("{0}")]
    Auth(String),
    /// An argument or setting is invalid; nothing was sent to Redis.
    #[error("{0}")]
    InvalidArgument(String),
    /// The service was created with `enabled: false`.
    #[error("{0}")]
    Disabled(String),
    /// A lock (or semaphore slot) could not be acquired within `waitMs`.
    #[error("{msg}")]
    LockNotAcquired { key: String, msg: String },
    /// A lock was lost while its holder ran (renewal refused, key taken, deleted or expired).
    #[error("{msg}")]
    LockLost { key: String, msg: String },
}

impl Error {
    /// The stable code JS code can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Connection(_) => "ERR_CONNECTION",
            Error::Timeout(_) => "ERR_TIMEOUT",
            Error::Reply(_) => "ERR_REPLY",
            Error::Auth(_) => "ERR_AUTH",
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::Disabled(_) => "ERR_DISABLED",
            Error::LockNotAcquired { .. } => "ERR_LOCK_NOT_ACQUIRED",
            Error::LockLost { .. } => "ERR_LOCK_LOST",
        }
    }

    /// Shorthand for an invalid-argument error.
    pub fn arg(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// The user's key a lock error is about.
    pub fn lock_key(&self) -> Option<&str> {
        match self {
            Error::LockNotAcquired { key, .. } | Error::LockLost { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Whether this error means "Redis is not reachable right now" (the degradation policy's
    /// trigger), as opposed to a bad request or a reply error.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Connection(_) | Error::Timeout(_))
    }

    /// Classifies a redis-crate error. `secret` (the configured password) is scrubbed from the
    /// text so that no message can carry it.
    pub fn from_redis(err: &redis::RedisError, secret: Option<&str>) -> Self {
        let text = redact(&err.to_string(), secret);
        if err.is_timeout() {
            return Error::Timeout(format!("Redis did not answer in time: {text}"));
        }
        if err.kind() == redis::ErrorKind::AuthenticationFailed
            || text.contains("WRONGPASS")
            || text.starts_with("NOAUTH")
        {
            return Error::Auth(format!("Redis refused the credentials: {text}"));
        }
        if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
        {
            return Error::Connection(format!("Redis connection failed: {text}"));
        }
        Error::Reply(text)
    }
}

/// What to add to a failed handshake's message when the server refused `HELLO`: it speaks RESP2
/// only (Redis 5 or older, or a proxy), and every connection here speaks RESP3.
pub fn resp2_hint(text: &str) -> &'static str {
    if text.contains("unknown command 'HELLO'") || text.contains("unknown command `HELLO`") {
        " (the server speaks RESP2 only: @app/redis needs Redis 6 or later, for RESP3)"
    } else {
        ""
    }
}

/// A server that refused `CLIENT TRACKING ON` while `clientCache` is on: the cache cannot be kept
/// coherent, so the connection is not used.
pub fn tracking_refused(why: &str) -> Error {
    Error::Connection(format!(
        "clientCache needs client tracking (Redis 6 or later, RESP3), and the server refused \
         CLIENT TRACKING ON: {why}"
    ))
}

/// Redis's own error text: `CODE detail`, as the server sent it.
pub fn server_error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Reply text of an error value inside a pipeline result.
pub fn pipeline_error_text(e: &redis::ServerError) -> String {
    server_error_text(&e.clone().into())
}

/// Replaces every occurrence of `secret` in `text` with `***`.
pub fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::Connection(String::new()).code(), "ERR_CONNECTION");
        assert_eq!(Error::Timeout(String::new()).code(), "ERR_TIMEOUT");
        assert_eq!(Error::Reply(String::new()).code(), "ERR_REPLY");
        assert_eq!(Error::arg("x").code(), "ERR_INVALID_ARGUMENT");
        assert_eq!(Error::Disabled(String::new()).code(), "ERR_DISABLED");
        assert_eq!(Error::Auth(String::new()).code(), "ERR_AUTH");
    }

    #[test]
    fn redact_scrubs_secret() {
        assert_eq!(
            redact("bad pw hunter2 here", Some("hunter2")),
            "bad pw *** here"
        );
        assert_eq!(redact("nothing", Some("")), "nothing");
        assert_eq!(redact("nothing", None), "nothing");
    }
}
