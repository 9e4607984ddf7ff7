//! Kernel modules by name, with their dependencies, from an unpacked
//! `lib/modules/<release>` tree.
//!
//! Debian's kernel packages ship no `modules.dep` (depmod runs when the
//! package is installed), so the dependencies come from each module's own
//! `.modinfo` section (`depends=`). Modules compressed with xz (Debian 6.12)
//! are unpacked here, so the guest loads plain ELF files on any kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, SectionHeader};

use crate::layout::{ModuleManifest, Unavailable};

/// A module ready to pack.
#[derive(Debug)]
pub(super) struct Packable {
    /// File name under `/modules`.
    pub file_name: String,
    /// The uncompressed module.
    pub data: Vec<u8>,
}

/// The modules to pack, in load order, and the manifest the guest reads.
pub(super) fn resolve(
    modules_dir: Option<&Path>,
    wanted: &[String],
) -> (Vec<Packable>, ModuleManifest) {
    let mut resolver = Resolver {
        index: BTreeMap::new(),
        builtin: BTreeSet::new(),
        done: BTreeMap::new(),
        packed: Vec::new(),
        manifest: ModuleManifest::default(),
    };
    match modules_dir {
        Some(dir) => {
            index(dir, &mut resolver.index);
            resolver.builtin = builtin(dir);
        }
        None => {
            for name in wanted {
                resolver.manifest.unavailable.push(Unavailable {
                    name: name.clone(),
                    reason: "the kernel came without a modules directory".to_string(),
                });
            }
            return (Vec::new(), resolver.manifest);
        }
    }
    for name in wanted {
        if let Err(reason) = resolver.add(&normalize(name)) {
            resolver.manifest.unavailable.push(Unavailable {
                name: name.clone(),
                reason,
            });
        }
    }
    (resolver.packed, resolver.manifest)
}

struct Resolver {
    index: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
    /// Outcome per module already looked at: packed (Ok) or why not.
    done: BTreeMap<String, Result<(), String>>,
    packed: Vec<Packable>,
    manifest: ModuleManifest,
}

impl Resolver {
    /// Packs `name` after its dependencies, depth first.
    fn add(&mut self, name: &str) -> Result<(), String> {
        if let Some(outcome) = self.done.get(name) {
            return outcome.clone();
        }
        // Mark first: a dependency cycle then ends here instead of looping.
        self.done.insert(name.to_string(), Ok(()));
        let outcome = self.pack(name);
        self.done.insert(name.to_string(), outcome.clone());
        outcome
    }

    fn pack(&mut self, name: &str) -> Result<(), String> {
        if self.builtin.contains(name) {
            self.manifest.builtin.push(name.to_string());
            return Ok(());
        }
        let path = self.index.get(name).cloned().ok_or_else(|| {
            format!(
                "no {name}.ko* file and not in modules.builtin: the kernel lacks it, \
                 or it is a feature that cannot be a module (check the kernel config)"
            )
        })?;
        let data = read_module(&path)?;
        for dependency in depends(&data).map_err(|e| format!("{}: {e}", path.display()))? {
            self.add(&dependency)
                .map_err(|reason| format!("needs {dependency}, which is unavailable: {reason}"))?;
        }
        let file_name = format!("{name}.ko");
        self.manifest.load_order.push(file_name.clone());
        self.packed.push(Packable { file_name, data });
        Ok(())
    }
}

/// Module names use `_` where file names may use `-`.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file name such as `sctp.ko.xz`.
fn module_name(file_name: &str) -> Option<String> {
    let (stem, _) = file_name.split_once(".ko")?;
    Some(normalize(stem))
}

/// Maps module names to files, recursively under `dir`.
fn index(dir: &Path, into: &mut BTreeMap<String, PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            index(&path, into);
        } else if let Some(name) = module_name(&entry.file_name().to_string_lossy()) {
            into.entry(name).or_insert(path);
        }
    }
}

/// Names of the modules built into the kernel (`modules.builtin`).
fn builtin(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| module_name(line.rsplit('/').next()?))
        .collect()
}

/// Reads a module, unpacking xz.
fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("reading {} failed: {e}", path.display()))?;
    let name = path.to_string_lossy();
    if name.ends_with(".ko") {
        return Ok(raw);
    }
    if name.ends_with(".ko.xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut &raw[..], &mut out)
            .map_err(|e| format!("unpacking {} failed: {e}", path.display()))?;
        return Ok(out);
    }
    Err(format!(
        "{} uses a compression this tool cannot unpack: build the kernel with CONFIG_MODULE_COMPRESS_XZ or without module compression",
        path.display()
    ))
}

/// The `depends=` list from a module's `.modinfo` section.
fn depends(data: &[u8]) -> Result<Vec<String>, String> {
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let Some((_, section)) = sections.section_by_name(endian, b".modinfo") else {
        return Err("no .modinfo section: not a kernel module".to_string());
    };
    let info = section.data(endian, data).map_err(|e| e.to_string())?;
    Ok(info
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(module_name("sctp.ko.xz").as_deref(), Some("sctp"));
        assert_eq!(
            module_name("ip6_udp_tunnel.ko").as_deref(),
            Some("ip6_udp_tunnel")
        );
        assert_eq!(module_name("nf-nat.ko.zst").as_deref(), Some("nf_nat"));
        assert_eq!(module_name("modules.order"), None);
    }

    #[test]
    fn missing_and_builtin_modules_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.builtin"),
            "kernel/net/mptcp/mptcp.ko\n",
        )
        .unwrap();
        let wanted = ["mptcp".to_string(), "sctp".to_string()];
        let (packed, manifest) = resolve(Some(dir.path()), &wanted);
        assert!(packed.is_empty());
        assert_eq!(manifest.builtin, ["mptcp"]);
        assert_eq!(manifest.unavailable[0].name, "sctp");
        assert!(
            manifest.unavailable[0]
                .reason
                .starts_with("no sctp.ko* file")
        );
    }

    #[test]
    fn no_modules_directory_makes_all_unavailable() {
        let (_, manifest) = resolve(None, &["sctp".to_string()]);
        assert_eq!(manifest.unavailable.len(), 1);
    }

    #[test]
    fn non_module_file_is_unavailable_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fake_for_test.ko"), b"not an elf").unwrap();
        let (_, manifest) = resolve(Some(dir.path()), &["fake-for-test".to_string()]);
        assert_eq!(manifest.unavailable[0].name, "fake-for-test");
    }
}
