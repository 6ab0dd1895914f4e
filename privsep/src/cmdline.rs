//! The command line, as isakmpd(8), plus `-j helpers` (the number of helper processes, which
//! OpenBSD's isakmpd does not have; `-j` as in make(1), "jobs in parallel", and used by no
//! isakmpd flag). Flags may be grouped (`-dv`), an option's argument may be attached
//! (`-p4500`) or separate (`-p 4500`), `--` ends the options. isakmpd takes no operands.

use std::fmt;
use std::path::PathBuf;

pub const DEFAULT_CONFIG: &str = "/etc/isakmpd/isakmpd.conf";
pub const DEFAULT_FIFO: &str = "/var/run/isakmpd.fifo";
pub const DEFAULT_PIDFILE: &str = "/var/run/isakmpd.pid";
pub const DEFAULT_REPORT: &str = "/var/run/isakmpd.report";
pub const DEFAULT_PCAP: &str = "/var/run/isakmpd.pcap";
pub const DEFAULT_PORT: u16 = 500;
pub const DEFAULT_NATT_PORT: u16 = 4500;

pub const USAGE: &str =
    "usage: isakmpd [-46adKLnSTv] [-c config-file] [-D class=level] [-f fifo]\n\
\t[-i pid-file] [-j helpers] [-l packetlog-file] [-N udpencap-port]\n\
\t[-p listen-port] [-R report-file]\n";

/// isakmpd's debug classes (`-D class=level`, FIFO `D class level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DebugClass {
    Misc = 0,
    Transport = 1,
    Message = 2,
    Crypto = 3,
    Timer = 4,
    Sysdep = 5,
    Sa = 6,
    Exchange = 7,
    Negotiation = 8,
    Policy = 9,
}

impl DebugClass {
    pub const ALL: [DebugClass; 10] = [
        DebugClass::Misc,
        DebugClass::Transport,
        DebugClass::Message,
        DebugClass::Crypto,
        DebugClass::Timer,
        DebugClass::Sysdep,
        DebugClass::Sa,
        DebugClass::Exchange,
        DebugClass::Negotiation,
        DebugClass::Policy,
    ];
}

/// Where the FIFO is: a path, or standard input (`-f -`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fifo {
    Path(PathBuf),
    Stdin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// -4 / -6: address families to use; neither given means both.
    pub inet4: bool,
    pub inet6: bool,
    /// -a: do not set up flows, only SAs.
    pub no_flows: bool,
    /// -c
    pub config: PathBuf,
    /// -D class=level, in order given (class `A` expands to every class).
    pub debug: Vec<(DebugClass, u8)>,
    /// -d: foreground, log to stderr.
    pub foreground: bool,
    /// -f
    pub fifo: Fifo,
    /// -i
    pub pidfile: PathBuf,
    /// -j: helper processes; `None` means one per CPU; 0 computes in the child.
    pub helpers: Option<usize>,
    /// -K: no policy (keynote) checks.
    pub no_policy: bool,
    /// -L / -l file: unencrypted packet capture file.
    pub packet_log: Option<PathBuf>,
    /// -n: do not touch the kernel's SAs.
    pub no_kernel: bool,
    /// -N
    pub natt_port: u16,
    /// -p
    pub port: u16,
    /// -R
    pub report: PathBuf,
    /// -S: start passive, no deletes on shutdown (sasyncd).
    pub sasyncd: bool,
    /// -T: do not advertise NAT-T.
    pub no_natt: bool,
    /// -v: log completed phase 1 and phase 2.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            inet4: true,
            inet6: true,
            no_flows: false,
            config: DEFAULT_CONFIG.into(),
            debug: Vec::new(),
            foreground: false,
            fifo: Fifo::Path(DEFAULT_FIFO.into()),
            pidfile: DEFAULT_PIDFILE.into(),
            helpers: None,
            no_policy: false,
            packet_log: None,
            no_kernel: false,
            natt_port: DEFAULT_NATT_PORT,
            port: DEFAULT_PORT,
            report: DEFAULT_REPORT.into(),
            sasyncd: false,
            no_natt: false,
            verbose: false,
        }
    }
}

impl Options {
    /// The number of helpers to start: `-j`, else one per CPU.
    pub fn helper_count(&self) -> usize {
        self.helpers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }

    /// The debug level configured for `class` (0 when none).
    pub fn debug_level(&self, class: DebugClass) -> u8 {
        self.debug
            .iter()
            .rev()
            .find(|(c, _)| *c == class)
            .map(|(_, l)| *l)
            .unwrap_or(0)
    }
}

/// A usage error: print `isakmpd: {self}` and `USAGE` to stderr, exit 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Exit status for a usage error, as isakmpd.
pub const EXIT_USAGE: i32 = 1;

fn parse_port(flag: char, s: &str) -> Result<u16, UsageError> {
    s.parse::<u16>()
        .map_err(|_| UsageError(format!("-{flag}: invalid port \"{s}\"")))
}

/// Parse `class=level`: class 0-9 or A (all), level 0-99.
pub fn parse_debug(s: &str) -> Result<Vec<(DebugClass, u8)>, UsageError> {
    let bad = || UsageError(format!("-D: invalid debug specification \"{s}\""));
    let (class, level) = s.split_once('=').ok_or_else(bad)?;
    let level: u8 = level.parse().map_err(|_| bad())?;
    if level > 99 {
        return Err(bad());
    }
    let classes = match class {
        "A" | "a" => DebugClass::ALL.to_vec(),
        c => {
            let n: usize = c.parse().map_err(|_| bad())?;
            vec![*DebugClass::ALL.get(n).ok_or_else(bad)?]
        }
    };
    Ok(classes.into_iter().map(|c| (c, level)).collect())
}

/// Parse the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Options, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let mut o = Options::default();
    let (mut four, mut six) = (false, false);
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return Err(UsageError(format!("unexpected argument \"{arg}\"")));
        };
        for (pos, flag) in flags.char_indices() {
            match flag {
                '4' => four = true,
                '6' => six = true,
                'a' => o.no_flows = true,
                'd' => o.foreground = true,
                'K' => o.no_policy = true,
                'L' => {
                    if o.packet_log.is_none() {
                        o.packet_log = Some(DEFAULT_PCAP.into());
                    }
                }
                'n' => o.no_kernel = true,
                'S' => o.sasyncd = true,
                'T' => o.no_natt = true,
                'v' => o.verbose = true,
                'c' | 'D' | 'f' | 'i' | 'j' | 'l' | 'N' | 'p' | 'R' => {
                    let rest = &flags[pos + flag.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(UsageError(format!("option requires an argument -- {flag}")));
                    };
                    match flag {
                        'c' => o.config = value.into(),
                        'D' => o.debug.extend(parse_debug(&value)?),
                        'f' => {
                            o.fifo = if value == "-" {
                                Fifo::Stdin
                            } else {
                                Fifo::Path(value.into())
                            }
                        }
                        'i' => o.pidfile = value.into(),
                        'j' => {
                            o.helpers = Some(value.parse().map_err(|_| {
                                UsageError(format!("-j: invalid helper count \"{value}\""))
                            })?)
                        }
                        'l' => o.packet_log = Some(value.into()),
                        'N' => o.natt_port = parse_port('N', &value)?,
                        'p' => o.port = parse_port('p', &value)?,
                        _ => o.report = value.into(),
                    }
                    break;
                }
                other => return Err(UsageError(format!("unknown option -- {other}"))),
            }
        }
    }
    if i < args.len() {
        return Err(UsageError(format!("unexpected argument \"{}\"", args[i])));
    }
    if four || six {
        o.inet4 = four;
        o.inet6 = six;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_isakmpds() {
        let o = parse(Vec::<String>::new()).expect("parse");
        assert_eq!(o, Options::default());
        assert_eq!(o.config, PathBuf::from("/etc/isakmpd/isakmpd.conf"));
        assert_eq!(o.fifo, Fifo::Path("/var/run/isakmpd.fifo".into()));
        assert_eq!(o.pidfile, PathBuf::from("/var/run/isakmpd.pid"));
        assert_eq!(o.report, PathBuf::from("/var/run/isakmpd.report"));
        assert_eq!((o.port, o.natt_port), (500, 4500));
        assert!(o.inet4 && o.inet6 && !o.foreground && !o.verbose);
        assert_eq!(o.packet_log, None);
        assert!(o.helper_count() >= 1);
    }

    #[test]
    fn every_flag() {
        let o = parse([
            "-46adKnSTv",
            "-c",
            "/tmp/c.conf",
            "-D3=40",
            "-D",
            "A=5",
            "-f",
            "-",
            "-i/var/run/x.pid",
            "-j",
            "0",
            "-l",
            "/var/run/p.pcap",
            "-N",
            "14500",
            "-p",
            "1500",
            "-R",
            "/var/run/r",
        ])
        .expect("parse");
        assert!(o.inet4 && o.inet6 && o.no_flows && o.foreground && o.no_policy);
        assert!(o.no_kernel && o.sasyncd && o.no_natt && o.verbose);
        assert_eq!(o.config, PathBuf::from("/tmp/c.conf"));
        assert_eq!(o.fifo, Fifo::Stdin);
        assert_eq!(o.pidfile, PathBuf::from("/var/run/x.pid"));
        assert_eq!(o.helpers, Some(0));
        assert_eq!(o.helper_count(), 0);
        assert_eq!(o.packet_log, Some(PathBuf::from("/var/run/p.pcap")));
        assert_eq!((o.port, o.natt_port), (1500, 14500));
        assert_eq!(o.report, PathBuf::from("/var/run/r"));
        // -D 3=40 then A=5: the later setting wins for class 3.
        assert_eq!(o.debug.len(), 11);
        assert_eq!(o.debug_level(DebugClass::Crypto), 5);
        assert_eq!(o.debug_level(DebugClass::Policy), 5);
    }

    #[test]
    fn families_and_pcap() {
        let o = parse(["-4"]).expect("parse");
        assert!(o.inet4 && !o.inet6);
        let o = parse(["-6"]).expect("parse");
        assert!(!o.inet4 && o.inet6);
        let o = parse(["-L"]).expect("parse");
        assert_eq!(o.packet_log, Some(PathBuf::from(DEFAULT_PCAP)));
        // -l names the file whether it comes before or after -L.
        let o = parse(["-l", "/var/run/a", "-L"]).expect("parse");
        assert_eq!(o.packet_log, Some(PathBuf::from("/var/run/a")));
        let o = parse(["-D", "2=7", "-v", "--"]).expect("parse");
        assert_eq!(o.debug_level(DebugClass::Message), 7);
        assert_eq!(o.debug_level(DebugClass::Misc), 0);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            vec!["-x"],
            vec!["-c"],
            vec!["-p", "70000"],
            vec!["-N", "port"],
            vec!["-D", "3"],
            vec!["-D", "B=1"],
            vec!["-D", "3=100"],
            vec!["-D", "10=1"],
            vec!["-j", "-1"],
            vec!["operand"],
            vec!["-d", "--", "operand"],
            vec!["-"],
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse(["-q"]), Err(UsageError("unknown option -- q".into())));
        assert_eq!(
            parse(["-dc"]),
            Err(UsageError("option requires an argument -- c".into()))
        );
        assert!(USAGE.starts_with("usage: isakmpd [-46adKLnSTv]"));
    }
}
