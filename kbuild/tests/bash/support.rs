//! Test helpers: small trees of build.config files in temporary directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes `text` to `dir/name`, creating parent directories.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

/// Writes an executable script.
pub fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = write(dir, name, text);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A checkout laid out like ACK's: ROOT_DIR holding `common/` with
/// build.config.gki.x86_64 sourcing build.config.common (which sources
/// build.config.constants), build.config.x86_64 and build.config.gki.
/// Written for these tests, imitating the structure only.
pub fn ack_like_tree(root: &Path) -> PathBuf {
    let common = root.join("common");
    write(&common, "build.config.constants", "CLANG_VERSION=r536225\n");
    write(
        &common,
        "build.config.common",
        r#". ${ROOT_DIR}/${KERNEL_DIR}/build.config.constants

BRANCH=android16-6.12
KMI_GENERATION=1
LLVM=1
DEPMOD=depmod
CLANG_PREBUILT_BIN=prebuilts/clang/host/linux-x86/clang-${CLANG_VERSION}/bin
BUILDTOOLS_PREBUILT_BIN=build/kernel/build-tools/path/linux-x86
KCFLAGS="${KCFLAGS} -D__ANDROID_COMMON_KERNEL__"
"#,
    );
    write(
        &common,
        "build.config.x86_64",
        r#"ARCH=x86_64
CROSS_COMPILE=x86_64-linux-gnu-

MAKE_GOALS="
bzImage
modules
"
"#,
    );
    write(
        &common,
        "build.config.gki",
        "DEFCONFIG=gki_defconfig\nPOST_DEFCONFIG_CMDS=\"check_defconfig\"\n",
    );
    write(
        &common,
        "build.config.gki.x86_64",
        r#". ${ROOT_DIR}/${KERNEL_DIR}/build.config.common
. ${ROOT_DIR}/${KERNEL_DIR}/build.config.x86_64
. ${ROOT_DIR}/${KERNEL_DIR}/build.config.gki
"#,
    );
    common
}
