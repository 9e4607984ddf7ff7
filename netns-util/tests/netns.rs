//! Namespaces against the running kernel. Needs root (or user namespaces);
//! without either each test says why and returns early.

mod common;

use common::netns_or_skip;
use netns_util::Netns;

#[test]
fn sysctls_are_private_to_the_namespace() {
    let Some(ns) = netns_or_skip() else { return };
    let key = "net.ipv4.ip_local_port_range";
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    ns.sysctl_write(key, "40000 40009").unwrap();
    assert_eq!(ns.sysctl_read(key).unwrap(), "40000\t40009");
    let other = Netns::new().unwrap();
    assert_ne!(other.sysctl_read(key).unwrap(), "40000\t40009");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap(),
        host
    );
}

#[test]
fn loopback_comes_up_over_netlink() {
    let Some(ns) = netns_or_skip() else { return };
    ns.loopback_up().unwrap();
    let flags = ns
        .run(|| std::fs::read_to_string("/sys/class/net/lo/flags"))
        .unwrap();
    let listener = ns
        .run(|| std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().unwrap()))
        .unwrap();
    assert!(
        listener.is_ok(),
        "bind on 127.0.0.1 after lo up: {listener:?} (flags {flags:?})"
    );
}

#[test]
fn a_thread_moves_itself_into_a_fresh_namespace_and_only_itself() {
    use std::os::unix::fs::MetadataExt;
    let own = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    let before = own();
    let inside = std::thread::spawn(move || {
        let ns = match Netns::unshare_current_thread() {
            Ok(ns) => ns,
            Err(e) if e.is_no_privileges() => return Err(e.to_string()),
            Err(e) => panic!("unshare: {e}"),
        };
        assert!(ns.is_current());
        assert_ne!(own(), before);
        // lo and sysctls go straight from this thread.
        ns.loopback_up().unwrap();
        ns.sysctl_write("net.ipv4.ip_local_port_range", "40100 40101")
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        Ok(port)
    })
    .join()
    .unwrap();
    match inside {
        Ok(port) => assert!((40100..=40101).contains(&port), "bound {port}"),
        Err(reason) => require::skip_or_fail(require::Requirement::Root, &reason),
    }
    assert_eq!(own(), before, "the calling thread stays where it was");
}

#[test]
fn missing_link_is_named_in_the_error() {
    let Some(ns) = netns_or_skip() else { return };
    let err = ns
        .netlink(async |nl| nl.link().up("nonexistent0").await)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no link named \"nonexistent0\" in the namespace"
    );
}

#[test]
fn empty_value_clears_a_list_sysctl_and_writes_work_from_inside() {
    let Some(ns) = netns_or_skip() else { return };
    let key = "net.ipv4.ip_local_reserved_ports";
    ns.sysctl_write(key, "40001,40003").unwrap();
    assert_eq!(ns.sysctl_read(key).unwrap(), "40001,40003");
    ns.sysctl_write(key, "").unwrap();
    assert_eq!(ns.sysctl_read(key).unwrap(), "");
    let from_inside = ns
        .run(|| {
            assert!(ns.is_current());
            ns.sysctl_write(key, "40005")
                .and_then(|()| ns.sysctl_read(key))
        })
        .unwrap()
        .unwrap();
    assert_eq!(from_inside, "40005");
    assert!(!ns.is_current(), "the test thread is in the host namespace");
}

/// A thread without CAP_SYS_ADMIN (capabilities are per thread) gets EPERM
/// from unshare(CLONE_NEWNET): that is a lack of privileges, typed as such
/// where it arises, so the suite may skip on it and on nothing else.
#[test]
fn eperm_from_unshare_is_a_lack_of_privileges() {
    if !nix::unistd::geteuid().is_root() {
        let reason = "needs root, to drop capabilities from one thread";
        return require::skip_or_fail(require::Requirement::Root, reason);
    }
    let error = std::thread::spawn(|| {
        drop_effective_capabilities_of_this_thread();
        Netns::unshare_current_thread().unwrap_err()
    })
    .join()
    .unwrap();
    assert!(error.is_no_privileges(), "{error:?}");
    assert_eq!(
        netns_util::error_chain(&error),
        "no privilege to create network namespaces (unshare(CLONE_NEWNET) failed): run as root, \
         or allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1 on Debian, \
         kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu, not in a chroot): \
         Operation not permitted (os error 1)"
    );
}

/// Clears the calling thread's effective capability set (capset(2) on
/// thread id 0 = this thread), keeping the permitted set.
fn drop_effective_capabilities_of_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data words, as capget(2)/capset(2) v3 expect.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        for word in &mut data {
            word.effective = 0;
        }
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}
