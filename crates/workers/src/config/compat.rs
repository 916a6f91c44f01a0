//! Compatibility dates and flags: which of Cloudflare's behaviour switches a project turns on.
//!
//! A flag's default follows the project's `compatibility_date`, as on Cloudflare; an explicit
//! flag (or its opposite) wins. Flags that change behaviour Dormouse implements are honoured;
//! known flags that change nothing here are accepted quietly; any other flag is reported once.

/// A behaviour switch with a date from which it is on by default.
struct Switch {
    enable: &'static str,
    disable: Option<&'static str>,
    /// `YYYY-MM-DD`; `None` when it is never on by default.
    default_from: Option<&'static str>,
}

/// The switches Dormouse honours.
const SWITCHES: &[(Feature, Switch)] = &[
    (
        Feature::AutoReplyToClose,
        Switch {
            enable: "web_socket_auto_reply_to_close",
            disable: Some("web_socket_manual_reply_to_close"),
            default_from: Some("2026-04-07"),
        },
    ),
    (
        Feature::NodeCompat,
        Switch {
            enable: "nodejs_compat",
            disable: None,
            default_from: None,
        },
    ),
    (
        Feature::AsyncLocalStorage,
        Switch {
            enable: "nodejs_als",
            disable: None,
            default_from: None,
        },
    ),
    (
        Feature::DeleteAllDeletesAlarm,
        Switch {
            enable: "delete_all_deletes_alarm",
            disable: Some("delete_all_preserves_alarm"),
            default_from: Some("2026-02-24"),
        },
    ),
    (
        Feature::StandardBinaryType,
        Switch {
            enable: "websocket_standard_binary_type",
            disable: Some("websocket_nodejs_binary_type"),
            default_from: Some("2026-03-17"),
        },
    ),
];

/// Flags that need nothing here: they are on (or meaningless) in Dormouse whatever the date.
const ALWAYS_ON: &[&str] = &[
    "nodejs_compat_v2",
    "durable_object_fetch_requires_full_url",
    "rpc",
    "fetch_refuses_unknown_protocols",
    "formdata_parser_supports_files",
    "global_navigator",
    "url_standard",
    "streams_enable_constructors",
    "transformstream_enable_standard_constructor",
    "export_commonjs_default",
    "websocket_close_reason_byte_limit",
    "durable_object_get_existing",
    "global_fetch_strictly_public",
    "no_global_navigator",
    "allow_custom_ports",
];

/// A behaviour a project's compatibility settings switch on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// The runtime answers a client's close frame before `webSocketClose` runs.
    AutoReplyToClose,
    /// `node:` modules and `Buffer` are available.
    NodeCompat,
    /// `node:async_hooks` (`AsyncLocalStorage`) alone is available.
    AsyncLocalStorage,
    /// `storage.deleteAll()` deletes the alarm too.
    DeleteAllDeletesAlarm,
    /// Binary messages of standard sockets arrive as `Blob` by default.
    StandardBinaryType,
}

/// A project's compatibility settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compatibility {
    /// `compatibility_date`, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// `compatibility_flags`, as written.
    pub flags: Vec<String>,
}

impl Compatibility {
    /// Whether `feature` is on for this project.
    pub fn enabled(&self, feature: Feature) -> bool {
        let (_, switch) = SWITCHES
            .iter()
            .find(|(f, _)| *f == feature)
            .expect("every feature has a switch");
        if self.flags.iter().any(|f| f == switch.enable) {
            return true;
        }
        if switch
            .disable
            .is_some_and(|d| self.flags.iter().any(|f| f == d))
        {
            return false;
        }
        if feature == Feature::AsyncLocalStorage && self.enabled(Feature::NodeCompat) {
            return true;
        }
        match (switch.default_from, &self.date) {
            // Dates compare as text: `YYYY-MM-DD` orders like the dates themselves.
            (Some(from), Some(date)) => date.as_str() >= from,
            _ => false,
        }
    }

    /// The flags Dormouse neither honours nor knows to be harmless, for a warning.
    pub fn unknown_flags(&self) -> Vec<&str> {
        self.flags
            .iter()
            .map(String::as_str)
            .filter(|flag| {
                !SWITCHES
                    .iter()
                    .any(|(_, s)| s.enable == *flag || s.disable == Some(flag))
                    && !ALWAYS_ON.contains(flag)
            })
            .collect()
    }

    /// Checks the date's shape.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(date) = &self.date {
            let ok = date.len() == 10
                && date.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                });
            if !ok {
                return Err(format!(
                    "compatibility_date must be a date like \"2025-09-01\", not {date:?}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compat(date: &str, flags: &[&str]) -> Compatibility {
        Compatibility {
            date: Some(date.to_owned()),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn dates_turn_switches_on_and_flags_override_them() {
        assert!(!compat("2025-09-01", &[]).enabled(Feature::AutoReplyToClose));
        assert!(compat("2026-04-07", &[]).enabled(Feature::AutoReplyToClose));
        assert!(
            compat("2025-09-01", &["web_socket_auto_reply_to_close"])
                .enabled(Feature::AutoReplyToClose)
        );
        assert!(
            !compat("2026-05-01", &["web_socket_manual_reply_to_close"])
                .enabled(Feature::AutoReplyToClose)
        );
        assert!(compat("2020-01-01", &["nodejs_compat"]).enabled(Feature::AsyncLocalStorage));
        assert!(!compat("2030-01-01", &[]).enabled(Feature::NodeCompat));
    }

    #[test]
    fn unknown_flags_are_listed() {
        let c = compat("2025-09-01", &["nodejs_compat", "rpc", "made_up_flag"]);
        assert_eq!(c.unknown_flags(), ["made_up_flag"]);
    }

    #[test]
    fn malformed_dates_are_refused() {
        assert!(compat("2025-9-1", &[]).validate().is_err());
        assert!(compat("2025-09-01", &[]).validate().is_ok());
    }
}
