use super::*;

#[test]
fn notes_round_trip_through_the_parser() {
    for (pid, nr) in [
        (1u32, 0i32),
        (4_194_304, 435),
        (i32::MAX as u32, i32::MAX),
        (77, 59),
    ] {
        let mut buf = [0u8; NOTE_MAX];
        let len = format_note(&mut buf, pid, nr);
        let line = std::str::from_utf8(&buf[..len]).expect("ascii");
        assert_eq!(line, format!("seccomp {pid} {nr}\n"));
        let body = line.strip_suffix('\n').expect("newline");
        assert_eq!(parse_note(body), Some((pid, i64::from(nr))));
    }
}

#[test]
fn extreme_values_fit_the_buffer() {
    let mut buf = [0u8; NOTE_MAX];
    let len = format_note(&mut buf, u32::MAX, i32::MIN);
    assert_eq!(&buf[..len], b"seccomp 4294967295 -2147483648\n");
    assert_eq!(len, NOTE_MAX);
    // Beyond what the parser accepts: u32::MAX is no pid, negative no system call.
    assert_eq!(parse_note("seccomp 4294967295 1"), None);
    assert_eq!(parse_note("seccomp 1 -2147483648"), None);
}

#[test]
fn parser_refuses_everything_else() {
    let bad = [
        "",
        "seccomp",
        "seccomp ",
        "seccomp 1",
        "seccomp 1 ",
        "seccomp  1 2",
        "seccomp 1  2",
        " seccomp 1 2",
        "seccomp 1 2 ",
        "seccomp 1 2\n",
        "seccomp 1 2\r",
        "seccomp 1 2 3",
        "Seccomp 1 2",
        "seccomp\t1 2",
        "seccomp 1\t2",
        "seccomp 0 2",
        "seccomp -1 2",
        "seccomp 1 -2",
        "seccomp +1 2",
        "seccomp 1 +2",
        "seccomp 01 2",
        "seccomp 1 02",
        "seccomp 1 00",
        "seccomp x 2",
        "seccomp 1 2x",
        "seccomp 1 0x2",
        "seccomp 1 ２",
        "seccomp 2147483648 1",
        "seccomp 1 2147483648",
        "seccomp 99999999999 1",
        "seccomp 1 99999999999",
        "seccomp 1 123456789012345678901234567890",
        "seccomp 1 2\0",
    ];
    for line in bad {
        assert_eq!(parse_note(line), None, "{line:?}");
    }
    let long = format!("seccomp 1 {}", "1".repeat(1000));
    assert_eq!(parse_note(&long), None);
    assert_eq!(parse_note("seccomp 1 0"), Some((1, 0)));
    assert_eq!(
        parse_note("seccomp 2147483647 2147483647"),
        Some((i32::MAX as u32, i32::MAX as i64))
    );
}

#[test]
fn names_come_from_libc_numbers() {
    assert_eq!(syscall_name(libc::SYS_openat), "openat");
    assert_eq!(syscall_name(libc::SYS_socket), "socket");
    assert_eq!(syscall_name(libc::SYS_execve), "execve");
    assert_eq!(syscall_name(libc::SYS_ptrace), "ptrace");
    assert_eq!(syscall_name(libc::SYS_clone3), "clone3");
    assert_eq!(syscall_name(libc::SYS_read), "read");
    assert_eq!(syscall_name(-1), "unknown");
    assert_eq!(syscall_name(100_000), "unknown");
    assert_eq!(syscall_name(i64::MAX), "unknown");
    // One name per number, one number per name.
    for (i, (n, name)) in NAMES.iter().enumerate() {
        for (m, other) in &NAMES[i + 1..] {
            assert_ne!(n, m, "{name} and {other}");
            assert_ne!(name, other);
        }
    }
}

fn allowed(profile: Profile) -> Vec<i64> {
    allow_list(profile).iter().map(|a| a.nr).collect()
}

#[test]
fn every_allowed_call_is_listed_once_and_named() {
    for profile in [Profile::Child, Profile::Helper] {
        let list = allowed(profile);
        for (i, nr) in list.iter().enumerate() {
            assert!(!list[i + 1..].contains(nr), "{profile:?}: {nr} twice");
            assert_ne!(syscall_name(*nr), "unknown", "{profile:?}: {nr}");
        }
    }
    // The helper's list is the child's minus the network, the reactor and the timers.
    let child = allowed(Profile::Child);
    assert!(allowed(Profile::Helper).iter().all(|nr| child.contains(nr)));
}

#[test]
fn dangerous_calls_are_in_neither_list() {
    let forbidden = [
        #[cfg(target_arch = "x86_64")]
        libc::SYS_open,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_creat,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_fork,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_vfork,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mknod,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_link,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_unlink,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rename,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mkdir,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chmod,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chown,
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_ptrace,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_tkill,
        libc::SYS_kill,
        libc::SYS_chroot,
        libc::SYS_mount,
        libc::SYS_setuid,
        libc::SYS_setresuid,
        libc::SYS_setgid,
        libc::SYS_setresgid,
        libc::SYS_setgroups,
        libc::SYS_setns,
        libc::SYS_unshare,
        libc::SYS_bpf,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_memfd_create,
        libc::SYS_mknodat,
        libc::SYS_linkat,
        libc::SYS_unlinkat,
        libc::SYS_renameat2,
        libc::SYS_mkdirat,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        libc::SYS_fchown,
        libc::SYS_fchownat,
        libc::SYS_prctl,
        libc::SYS_seccomp,
        libc::SYS_pipe2,
        libc::SYS_setsockopt,
    ];
    for profile in [Profile::Child, Profile::Helper] {
        let list = allowed(profile);
        for nr in forbidden {
            assert!(
                !list.contains(&nr),
                "{profile:?} allows {}",
                syscall_name(nr)
            );
        }
    }
    // Networking and timers are the child's only.
    let helper = allowed(Profile::Helper);
    for nr in [
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_epoll_ctl,
        libc::SYS_ioctl,
    ] {
        assert!(!helper.contains(&nr), "helper allows {}", syscall_name(nr));
    }
}

#[test]
fn both_profiles_compile_to_bpf() {
    for profile in [Profile::Child, Profile::Helper] {
        let prog = compile(profile, std::process::id()).expect("compile");
        assert!(!prog.is_empty());
    }
}
