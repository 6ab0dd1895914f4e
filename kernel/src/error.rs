//! Errors of the kernel backend: the operation, what it was about, and the kernel's errno,
//! in one line an operator can read.

use std::fmt;

/// The operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Open,
    AllocSpi,
    AddSa,
    DeleteSa,
    AddPolicy,
    DeletePolicy,
    Dump,
    Subscribe,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Open => "open of",
            Op::AllocSpi => "SPI allocation for",
            Op::AddSa => "",
            Op::DeleteSa => "delete of",
            Op::AddPolicy => "",
            Op::DeletePolicy => "delete of",
            Op::Dump => "listing of",
            Op::Subscribe => "subscription to",
        }
    }
}

/// A failed kernel operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    pub op: Op,
    /// What the operation was about, e.g. `ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2`.
    pub subject: String,
    /// The kernel's errno (positive), when the kernel answered with one.
    pub errno: Option<i32>,
    /// Further detail: without an errno, what went wrong (a netlink transport or decoding
    /// failure, or a request we refuse to send); with one, what the hint refers to (e.g. the
    /// SA's algorithm names on ENOSYS).
    pub detail: String,
}

impl KernelError {
    pub(crate) fn errno(op: Op, subject: impl Into<String>, errno: i32) -> KernelError {
        KernelError {
            op,
            subject: subject.into(),
            errno: Some(errno),
            detail: String::new(),
        }
    }

    pub(crate) fn other(
        op: Op,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> KernelError {
        KernelError {
            op,
            subject: subject.into(),
            errno: None,
            detail: detail.into(),
        }
    }

    pub(crate) fn from_netlink(op: Op, subject: impl Into<String>, e: xfrmnetlink::Error) -> Self {
        match e {
            xfrmnetlink::Error::NetlinkError(msg) => match msg.code {
                Some(code) => KernelError::errno(op, subject, code.get().saturating_abs()),
                None => KernelError::other(op, subject, "netlink error without a code"),
            },
            other => KernelError::other(op, subject, other.to_string()),
        }
    }

    /// True when the kernel said the object does not exist (ENOENT or ESRCH).
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno, Some(libc::ENOENT) | Some(libc::ESRCH))
    }

    /// True when the kernel said the object already exists.
    pub fn is_exists(&self) -> bool {
        self.errno == Some(libc::EEXIST)
    }
}

/// The netlink sockets are driven by a task on the current tokio runtime: refuse (instead
/// of panicking in `tokio::spawn`) when there is none.
pub(crate) fn need_runtime(subject: &str) -> Result<(), KernelError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(KernelError::other(
            Op::Open,
            subject,
            "must be opened inside a tokio runtime",
        )),
    }
}

/// The symbolic name of common errnos of XFRM netlink.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::ENOBUFS => "ENOBUFS",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EACCES => "EACCES",
        _ => return None,
    })
}

/// The strerror text without Rust's " (os error N)" suffix.
fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = self.op.verb();
        if verb.is_empty() {
            write!(f, "kernel refused {}", self.subject)?;
        } else {
            write!(f, "kernel refused {} {}", verb, self.subject)?;
        }
        match self.errno {
            Some(errno) => {
                write!(f, ": {}", strerror(errno))?;
                let name = errno_name(errno);
                let hint = hint(self.op, &self.subject, errno);
                match (name, hint) {
                    (Some(n), Some(h)) if !self.detail.is_empty() => {
                        write!(f, " ({n}: {h}: {})", self.detail)
                    }
                    (Some(n), Some(h)) => write!(f, " ({n}: {h})"),
                    (Some(n), None) => write!(f, " ({n})"),
                    (None, Some(h)) => write!(f, " (errno {errno}: {h})"),
                    (None, None) => write!(f, " (errno {errno})"),
                }
            }
            None => write!(f, ": {}", self.detail),
        }
    }
}

impl std::error::Error for KernelError {}

/// A hint for the errnos whose cause is known.
fn hint(op: Op, subject: &str, errno: i32) -> Option<&'static str> {
    match (op, errno) {
        (Op::AddSa, libc::EPROTONOSUPPORT) if subject.starts_with("AH") => {
            Some("this kernel has no AH support")
        }
        (Op::AddSa, libc::EPROTONOSUPPORT) => Some("this kernel has no ESP support"),
        (Op::AddSa, libc::ENOSYS) | (Op::AddSa, libc::ENOENT) => {
            Some("this kernel lacks an algorithm of the SA")
        }
        (_, libc::EPERM) => Some("CAP_NET_ADMIN is needed"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_refusal_names_the_sa_and_the_errno() {
        let e = KernelError::errno(
            Op::AddSa,
            "ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2",
            libc::EPROTONOSUPPORT,
        );
        assert_eq!(
            e.to_string(),
            "kernel refused ESP SA 0x1234abcd 192.0.2.1 -> 192.0.2.2: Protocol not supported \
             (EPROTONOSUPPORT: this kernel has no ESP support)"
        );
    }

    #[test]
    fn opening_outside_a_runtime_is_an_error_not_a_panic() {
        let e = crate::Xfrm::open().unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel refused open of XFRM netlink socket: must be opened inside a tokio runtime"
        );
        assert!(crate::XfrmEvents::open().is_err());
    }

    #[test]
    fn other_operations_say_what_they_did() {
        let e = KernelError::errno(Op::DeleteSa, "ESP SA 0x1 a -> b", libc::ESRCH);
        assert_eq!(
            e.to_string(),
            "kernel refused delete of ESP SA 0x1 a -> b: No such process (ESRCH)"
        );
        assert!(e.is_not_found());
        let mut e = KernelError::errno(Op::AddSa, "ESP SA 0x1 a -> b", libc::ENOSYS);
        e.detail = "rfc4106(gcm(aes))".into();
        assert_eq!(
            e.to_string(),
            "kernel refused ESP SA 0x1 a -> b: Function not implemented \
             (ENOSYS: this kernel lacks an algorithm of the SA: rfc4106(gcm(aes)))"
        );
        let e = KernelError::other(Op::Open, "XFRM netlink socket", "boom");
        assert_eq!(
            e.to_string(),
            "kernel refused open of XFRM netlink socket: boom"
        );
    }
}
