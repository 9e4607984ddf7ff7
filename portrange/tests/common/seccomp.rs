//! A stand-in for a kernel that answers one system call with a chosen
//! errno: a seccomp filter, installed in the child between fork and exec,
//! so the program under test and everything it starts see that answer.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `AUDIT_ARCH_*` of the host, which the filter checks first.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
/// Offsets in `struct seccomp_data`: the arch, the call's number, and the
/// low 32 bits of argument `i` (little-endian) at `16 + 8 * i`.
const ARCH_AT: u32 = 4;
const NR_AT: u32 = 0;

/// One system call answered with an errno when its arguments match.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The call's number (`libc::SYS_setsockopt`).
    pub syscall: i64,
    /// `(argument index, value of its low 32 bits)` that must all match.
    pub args: Vec<(u32, u32)>,
    /// What the call returns instead of running.
    pub errno: i32,
}

impl Answer {
    /// `setsockopt(_, SOL_IP, IP_LOCAL_PORT_RANGE, ...)` answering `errno`.
    pub fn port_range_setsockopt(errno: i32) -> Answer {
        Answer {
            syscall: libc::SYS_setsockopt,
            args: vec![(1, 0), (2, 51)],
            errno,
        }
    }

    /// The BPF program: other architectures and calls are allowed.
    fn program(&self) -> Vec<libc::sock_filter> {
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let checks = 2 + self.args.len();
        // Instruction i jumps to "allow" (the last) when a check fails.
        let mut program = Vec::new();
        let check = |program: &mut Vec<libc::sock_filter>, at: u32, value: u32| {
            program.push(op(LD_W_ABS, 0, 0, at));
            let index = program.len();
            let allow = 2 * checks + 1;
            let skip = u8::try_from(allow - index - 1).expect("a short filter");
            program.push(op(JEQ_K, 0, skip, value));
        };
        check(&mut program, ARCH_AT, AUDIT_ARCH);
        check(
            &mut program,
            NR_AT,
            u32::try_from(self.syscall).expect("a call number"),
        );
        for &(index, value) in &self.args {
            check(&mut program, 16 + 8 * index, value);
        }
        let errno = u32::try_from(self.errno).expect("an errno") & 0xffff;
        program.push(op(RET_K, 0, 0, RET_ERRNO | errno));
        program.push(op(RET_K, 0, 0, RET_ALLOW));
        program
    }

    /// Makes `command` run under this answer.
    pub fn apply(&self, command: &mut Command) {
        let mut program = self.program();
        // SAFETY: the closure runs in the forked child before exec and only
        // makes two prctl calls on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                let fprog = libc::sock_fprog {
                    len: u16::try_from(program.len()).expect("a short filter"),
                    filter: program.as_mut_ptr(),
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &fprog as *const libc::sock_fprog,
                    ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
