//! The file systems a guest needs.

use nix::mount::{MsFlags, mount};

use super::Error;

/// (type, mount point, flags) in mount order.
const MOUNTS: &[(&str, &str, MsFlags)] = &[
    (
        "proc",
        "/proc",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
    ),
    (
        "sysfs",
        "/sys",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
    ),
    ("devtmpfs", "/dev", MsFlags::MS_NOSUID),
    ("tmpfs", "/tmp", MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV)),
    ("tmpfs", "/run", MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV)),
];

/// Mounts proc, sysfs, devtmpfs and two tmpfs.
pub(super) fn mount_all() -> Result<(), Error> {
    for &(fstype, target, flags) in MOUNTS {
        std::fs::create_dir_all(target).map_err(|source| Error::Io {
            what: "creating",
            path: target,
            source,
        })?;
        mount(Some(fstype), target, Some(fstype), flags, None::<&str>).map_err(|source| {
            Error::Mount {
                fstype,
                target,
                source,
            }
        })?;
    }
    Ok(())
}
