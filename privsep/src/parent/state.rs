//! What the parent knows and does between events, without processes or signals: the
//! configuration it read, the kernel and its own table of what it installed, the capture
//! file, the updown queue, the reports it asked for. Each message of the child and each
//! FIFO command is handled here; the event loop (`run`) only moves them in and out.
//! Everything the child sends is treated as hostile: a message that is not what the
//! parent asked for, or not allowed by its policy, is refused and logged (rate-limited).

use crate::authority::Authority;
use crate::capture::Capture;
use crate::cmdline::{DebugClass, Options};
use crate::commands::{self, Routed};
use crate::config::{ConfigError, Loaded};
use crate::ipc::AsyncChannel;
use crate::log;
use crate::proto::{ReportKind, ToChild, ToParent};
use crate::sadb::Sadb;
use crate::updown;
use crate::updown_queue::UpdownQueue;
use ike::conf::ConfError;
use std::fmt;
use std::path::{Path, PathBuf};

/// Reports asked for and not yet answered, at most (an operator's `r` flood).
const MAX_REPORTS_ASKED: u32 = 16;

/// Why a FIFO `C` change is refused; the running configuration stays as it was.
#[derive(Debug)]
pub enum ConfigOpError {
    /// The configuration database refused the operation.
    Refused(ConfError),
    /// The changed configuration does not check (as a file read would not).
    Config(ConfigError),
}

impl fmt::Display for ConfigOpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The reason alone: the "line" is the operation's place in a one-operation
            // transaction, which tells the operator nothing.
            ConfigOpError::Refused(e) => f.write_str(&e.reason),
            ConfigOpError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConfigOpError {}

/// What the event loop must do after a message or command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// A new configuration with other secrets: the helpers must be started again, with a
    /// child for them.
    RestartChild,
    /// `Q`: shut down as on SIGTERM.
    Shutdown,
}

/// Logged when the child sends something out of place.
fn refuse(what: &str) {
    log::limited(
        "refused messages of the child",
        log::Level::Warning,
        &format!("refused a message of the child: {what}"),
    );
}

pub struct ParentState {
    pub opts: Options,
    pub loaded: Loaded,
    pub sadb: Sadb,
    pub authority: Authority,
    pub updown: UpdownQueue,
    capture: Option<Capture>,
    /// Reports asked of the child and not answered: [State, Sas].
    asked: [u32; 2],
    /// Messages of the child refused so far (for the report and tests).
    pub refused: u64,
}

fn slot(kind: ReportKind) -> usize {
    match kind {
        ReportKind::State => 0,
        ReportKind::Sas => 1,
    }
}

impl ParentState {
    pub fn new(opts: Options, loaded: Loaded, sadb: Sadb) -> ParentState {
        let authority = Authority::new(&loaded.policy);
        ParentState {
            opts,
            loaded,
            sadb,
            authority,
            updown: UpdownQueue::default(),
            capture: None,
            asked: [0; 2],
            refused: 0,
        }
    }

    pub fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Start a capture to `path` (the `-l` file, or the FIFO's `p on=path`).
    pub fn capture_on(&mut self, path: &Path) {
        match Capture::open(path, self.opts.natt_port, crate::capture::MAX_BYTES) {
            Ok(c) => {
                log::info(&format!("packet capture to {}", c.path().display()));
                self.capture = Some(c);
            }
            Err(e) => {
                log::error(&format!("packet capture: {e}"));
                self.capture = None;
            }
        }
    }

    pub fn capture_off(&mut self) {
        if let Some(mut c) = self.capture.take() {
            let _ = c.flush();
            log::info("packet capture off");
        }
    }

    /// Ask the child for a report (SIGUSR1, FIFO `r` and `S`).
    pub async fn ask_report(&mut self, kind: ReportKind, child: &AsyncChannel) {
        let n = &mut self.asked[slot(kind)];
        if *n >= MAX_REPORTS_ASKED {
            return log::warning("report: the child has not answered the earlier requests");
        }
        *n += 1;
        send(child, &ToChild::Report(kind)).await;
    }

    /// Queue the updown runs the table says are due, each with the script the parent's
    /// own configuration names for the connection.
    pub fn run_updown(&mut self, due: Vec<updown::Request>) {
        for r in due {
            if let Some(script) = updown_script(&self.loaded, &r.connection) {
                let _ = self.updown.push(script, r);
            }
        }
    }

    /// One message of the child (`Ready` and `NewHelper` are the event loop's).
    pub async fn on_child(&mut self, msg: ToParent, child: &AsyncChannel) {
        match msg {
            ToParent::Ready | ToParent::NewHelper => {}
            ToParent::Report { kind, text } => {
                let n = &mut self.asked[slot(kind)];
                if *n == 0 {
                    self.refused += 1;
                    return refuse("a report the parent did not ask for");
                }
                *n -= 1;
                match kind {
                    ReportKind::State => {
                        let mut text = text;
                        if let Some(counters) = self.sadb.counters().await {
                            text.push_str(&crate::sadb::render_counters(&counters));
                        }
                        text.push_str(&self.render_parent());
                        write_run_file(&self.opts.report, &text, "report");
                    }
                    ReportKind::Sas => write_run_file(&result_path(&self.opts), &text, "result"),
                }
            }
            ToParent::Packet { from, to, bytes } => {
                // Capture may just have been turned off while the child still sent: drop.
                if let Some(c) = self.capture.as_mut() {
                    if let Err(e) = c.record(from, to, &bytes) {
                        log::error(&format!("packet capture stopped: {e}"));
                        self.capture = None;
                        send(child, &ToChild::Capture(false)).await;
                    }
                }
            }
            ToParent::Kernel { id, request } => {
                let served = self
                    .authority
                    .serve(&self.loaded.policy, &self.sadb, id, &request)
                    .await;
                if let Some(a) = served.answer {
                    send(child, &ToChild::Kernel(a)).await;
                }
                self.run_updown(served.updown);
            }
        }
    }

    /// The parent's part of the report: what its table holds and what it refused.
    fn render_parent(&self) -> String {
        let (spis, sas, policies, tunnels) = self.authority.table.counts();
        format!(
            "\nParent: {sas} SAs, {policies} policy sets, {tunnels} tunnels up, {spis} SPIs allocated and unused; refused {} kernel requests and {} messages of the child; {} updown runs waiting or running\n",
            self.authority.refused,
            self.refused,
            self.updown.pending()
        )
    }

    /// One line read from the FIFO, parsed.
    pub async fn on_command(&mut self, cmd: fifo::Command, child: &AsyncChannel) -> Outcome {
        log::debug(
            DebugClass::Misc,
            10,
            &format!("fifo: {}", commands::redacted(&cmd)),
        );
        match commands::route(cmd) {
            Routed::Nothing => Outcome::Continue,
            Routed::Negotiation(n) => {
                send(child, &ToChild::Command(n)).await;
                Outcome::Continue
            }
            Routed::Debug(setting) => {
                commands::apply_debug(setting);
                send(child, &ToChild::Debug(setting)).await;
                Outcome::Continue
            }
            Routed::Report(kind) => {
                self.ask_report(kind, child).await;
                Outcome::Continue
            }
            Routed::Capture(fifo::PacketCapture::On(path)) => {
                let path = path
                    .or_else(|| self.opts.packet_log.clone())
                    .unwrap_or_else(|| crate::cmdline::DEFAULT_PCAP.into());
                self.capture_on(&path);
                send(child, &ToChild::Capture(self.capturing())).await;
                Outcome::Continue
            }
            Routed::Capture(fifo::PacketCapture::Off) => {
                self.capture_off();
                send(child, &ToChild::Capture(false)).await;
                Outcome::Continue
            }
            Routed::Quit => Outcome::Shutdown,
            Routed::Reload => {
                log::info("FIFO R: reloading the configuration (FIFO changes are discarded)");
                self.reload(child).await
            }
            Routed::Config(op) => match config_op(&self.loaded, op, &self.opts) {
                Err(e) => {
                    log::warning(&format!("FIFO C: {e}; the configuration is unchanged"));
                    Outcome::Continue
                }
                Ok(None) => Outcome::Continue,
                Ok(Some(new)) => self.adopt(new, child).await,
            },
        }
    }

    /// SIGHUP and FIFO `R`: read the configuration file again.
    pub async fn reload(&mut self, child: &AsyncChannel) -> Outcome {
        match crate::config::read(&self.opts.config) {
            Err(e) => {
                log::error(&format!(
                    "reload refused, keeping the running configuration: {e}"
                ));
                Outcome::Continue
            }
            Ok(new) => self.adopt(new, child).await,
        }
    }

    /// Take a new configuration: the child gets it at once, unless the secrets changed,
    /// which needs new helpers and so a new child.
    async fn adopt(&mut self, mut new: Loaded, child: &AsyncChannel) -> Outcome {
        new.child.local_addresses = self.loaded.child.local_addresses.clone();
        new.child.no_natt = self.loaded.child.no_natt;
        let restart = new.secrets != self.loaded.secrets;
        self.authority
            .addresses
            .set_listen_on(&new.policy.general.listen_on);
        if !restart {
            send(child, &ToChild::Config(new.child.clone())).await;
        }
        self.loaded = new;
        if restart {
            log::info("secrets changed: restarting the child and its helpers");
            Outcome::RestartChild
        } else {
            Outcome::Continue
        }
    }
}

/// Send to the child; a broken channel is noticed by the receiving side of the loop.
pub async fn send(child: &AsyncChannel, msg: &ToChild) {
    if let Err(e) = child.send(msg).await {
        log::warning(&format!("child channel: {e}"));
    }
}

/// The configured updown script of `connection`, if any.
fn updown_script(loaded: &Loaded, connection: &str) -> Option<String> {
    loaded
        .updown
        .iter()
        .find(|(c, _)| c == connection)
        .map(|(_, s)| s.clone())
}

/// Write a report or result: only under /var/run, replaced atomically, mode 0600 (it
/// names peers, SPIs and the configuration).
pub fn write_run_file(path: &Path, text: &str, what: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let path = match crate::files::run_path(path) {
        Ok(p) => p,
        Err(e) => return log::error(&format!("{what}: {e}")),
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => log::info(&format!("{what} written to {}", path.display())),
        Err(e) => log::error(&format!("{what} {}: {e}", path.display())),
    }
}

/// The result file of `C get` and `S`: isakmpd.result beside the report file (so the
/// default is isakmpd's /var/run/isakmpd.result).
pub fn result_path(opts: &Options) -> PathBuf {
    opts.report.with_file_name("isakmpd.result")
}

/// A FIFO `C` operation on the running configuration, as one transaction. `get` writes the
/// value to the result file and changes nothing (`Ok(None)`); a change that does not build a
/// valid policy is refused as a whole.
fn config_op(
    loaded: &Loaded,
    op: fifo::ConfigOp,
    opts: &Options,
) -> Result<Option<Loaded>, ConfigOpError> {
    use fifo::ConfigOp;
    if let ConfigOp::Get { section, tag } = &op {
        let value = loaded.conf.get_str(section, tag).unwrap_or("");
        write_run_file(&result_path(opts), &format!("{value}\n"), "result");
        return Ok(None);
    }
    let mut conf = loaded.conf.clone();
    let t = conf.begin();
    let applied = match op {
        ConfigOp::Set {
            section,
            tag,
            value,
            force,
        } => conf.set(t, &section, &tag, &value, force, false),
        ConfigOp::Add {
            section,
            tag,
            value,
        } => conf.add(t, &section, &tag, &value),
        ConfigOp::Rmv {
            section,
            tag,
            value,
        } => conf.rmv(t, &section, &tag, &value),
        ConfigOp::Rm { section, tag } => conf.remove(t, &section, &tag),
        ConfigOp::Rms { section } => conf.remove_section(t, &section),
        ConfigOp::Get { .. } => Ok(()),
    };
    let ended = applied.and_then(|()| conf.end(t, true));
    ended.map_err(ConfigOpError::Refused)?;
    crate::config::split(conf, &opts.config)
        .map(Some)
        .map_err(ConfigOpError::Config)
}
