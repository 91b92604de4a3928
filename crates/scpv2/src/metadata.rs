//! The JSON metadata of SCPv2 chunks: what splunkd sends (getinfo, execute) and what we reply.
//!
//! `session_key` is deliberately absent from [`SearchInfo`]: serde skips it while parsing, so the
//! credential never exists in our memory, let alone in a model, a log or an error message.

use serde::{Deserialize, Serialize};

/// The request metadata. Unknown keys are ignored for forward compatibility.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Request {
    pub action: Option<String>,
    pub preview: bool,
    pub finished: bool,
    pub searchinfo: Option<SearchInfo>,
}

/// `searchinfo` from the getinfo chunk, minus anything secret.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SearchInfo {
    pub args: Vec<String>,
    pub raw_args: Vec<String>,
    pub dispatch_dir: String,
    pub sid: String,
    pub app: String,
    pub owner: String,
    pub username: String,
    pub command: String,
    pub splunk_version: String,
}

impl SearchInfo {
    /// MLTK's test for splunkd's parse-only spawns, which must get a getinfo reply and no work.
    pub fn is_parse_only(&self) -> bool {
        let sid = self.sid.as_str();
        sid.is_empty() || sid == "tmp" || sid.starts_with("searchparsetmp") || sid.ends_with("_tmp")
    }
}

/// Inspector message levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Level {
    #[serde(rename = "INFO")]
    Info,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "ERROR")]
    Error,
}

#[derive(Debug, Default, Serialize)]
pub struct Inspector {
    pub messages: Vec<(Level, String)>,
}

/// A reply's metadata. Field order matters: `inspector` must precede `error`, or splunkd may drop the
/// messages.
#[derive(Debug, Default, Serialize)]
pub struct Reply {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspector: Option<Inspector>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generating: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_fields: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A fatal error reply: ERROR message first, then `finished` and `error`.
    pub fn error(message: &str, mut earlier: Vec<(Level, String)>) -> Reply {
        earlier.push((Level::Error, message.to_string()));
        Reply {
            inspector: Some(Inspector { messages: earlier }),
            finished: Some(true),
            error: Some(message.to_string()),
            ..Default::default()
        }
    }

    /// Adds inspector messages, if any.
    pub fn with_messages(mut self, messages: Vec<(Level, String)>) -> Reply {
        if !messages.is_empty() {
            self.inspector = Some(Inspector { messages });
        }
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("reply metadata always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_puts_inspector_first() {
        let j = String::from_utf8(Reply::error("boom \"x\"", vec![]).to_json()).unwrap();
        assert_eq!(
            j,
            r#"{"inspector":{"messages":[["ERROR","boom \"x\""]]},"finished":true,"error":"boom \"x\""}"#
        );
    }

    #[test]
    fn session_key_is_never_kept() {
        let r: Request = serde_json::from_str(
            r#"{"action":"getinfo","searchinfo":{"args":["m"],"session_key":"secret","sid":"1.2","earliest_time":"0","maxresultrows":50000}}"#,
        )
        .unwrap();
        let info = r.searchinfo.unwrap();
        assert!(!format!("{info:?}").contains("secret"));
        assert!(!info.is_parse_only());
    }
}
