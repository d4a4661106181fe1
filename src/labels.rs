//! Label sets of the counters: the `Label` trait every reason enum implements (its `ALL` and
//! `as_str`), and the reasons that belong to no pure module of their own (why a file was
//! completed, why a connection ended).
//!
//! Part of the pure core: it imports nothing of ours. `stats::Labelled<R>` counts per label;
//! `label_set!` declares a set.

/// A closed set of metric label values.
pub trait Label: Copy + 'static {
    /// Every value, in index order.
    const ALL: &'static [Self];
    /// The stable name used in metrics, `/status` and files.
    fn as_str(self) -> &'static str;
    /// The position in `ALL`.
    fn index(self) -> usize;
}

/// Declares a label set: the enum, its `Label` impl (`ALL` in declaration order, `as_str`,
/// `index`) and `Display` as the label text.
macro_rules! label_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $crate::labels::Label for $name {
            const ALL: &'static [$name] = &[$($name::$variant,)+];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            fn index(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::labels::Label::as_str(*self))
            }
        }
    };
}
pub(crate) use label_set;

label_set! {
    /// Why a file was completed; the label of the rotations metric.
    pub enum RotationReason {
        Minute => "minute",
        Events => "events",
        Bytes => "bytes",
        Signal => "signal",
        Shutdown => "shutdown",
        /// Events of the next UTC day arrived (partitioned layout), past the straggler grace.
        Date => "date",
        /// `--max-open-files` were open, or file descriptors ran out: the least recently
        /// written file made room.
        OpenFiles => "open_files",
    }
}

label_set! {
    /// Why the archiver connected again; the label of the reconnects metric.
    pub enum ReconnectReason {
        /// The server ended the response (it does so every 15 minutes).
        ServerClosed => "server_closed",
        /// Nothing arrived for `--idle-timeout`.
        Stalled => "stalled",
        /// Reading the body failed (reset, broken chunking, TLS alert).
        ReadFailed => "read_failed",
        /// The connection or request failed before a stream began.
        ConnectFailed => "connect_failed",
    }
}

label_set! {
    /// Why delivering a completed file (to S3, or to `--on-ready`) failed; the label of the
    /// shipping failures metric. Every one is retried.
    pub enum ShipFailure {
        /// No connection, a cut one, a timeout.
        Network => "network",
        /// A 5xx answer, or a body damaged on the way (the server's hash check refused it).
        Server => "server",
        /// 503 SlowDown or 429: the server asks to slow down.
        Throttled => "throttled",
        /// No credentials, or refused ones (403).
        Credentials => "credentials",
        NoBucket => "no_bucket",
        /// `RequestTimeTooSkewed`: this machine's clock is wrong.
        Clock => "clock",
        /// Any other refusal (4xx).
        Refused => "refused",
        /// The local file could not be read.
        Local => "local",
        /// The `--on-ready` program failed or could not start.
        Command => "command",
        /// The `--on-ready` program ran past `--on-ready-timeout` and was killed.
        Timeout => "timeout",
    }
}

impl ShipFailure {
    /// Whether only an operator can fix it: such failures are logged once a minute, named by
    /// `/check`, and retried at a steady pace rather than with growing backoff.
    pub fn needs_operator(self) -> bool {
        matches!(
            self,
            ShipFailure::Credentials
                | ShipFailure::NoBucket
                | ShipFailure::Clock
                | ShipFailure::Refused
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `ALL` lists every value once, in index order, with distinct snake_case names.
    pub(crate) fn check_label_set<R: Label + std::fmt::Debug>() {
        let mut names = std::collections::HashSet::new();
        for (idx, label) in R::ALL.iter().enumerate() {
            assert_eq!(label.index(), idx, "{label:?}");
            let name = label.as_str();
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(names.insert(name), "{name} twice");
        }
    }

    #[test]
    fn label_sets_are_consistent() {
        check_label_set::<RotationReason>();
        check_label_set::<ReconnectReason>();
        check_label_set::<ShipFailure>();
        assert_eq!(RotationReason::Signal.to_string(), "signal");
    }
}
