//! The ELF interpreter and shared libraries a dynamically linked program needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arch::Arch;
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, read::StringTable};

use super::Error;

/// Where Debian keeps shared libraries for `arch`, in the dynamic loader's
/// order. A library found there for another architecture is passed over,
/// as the loader does, so a foreign program finds its libraries only where
/// the host has that architecture's (its multiarch directory).
fn system_dirs(arch: Arch) -> Vec<String> {
    let multiarch = format!("{}-linux-gnu", arch.gnu_name());
    vec![
        format!("/lib/{multiarch}"),
        format!("/usr/lib/{multiarch}"),
        "/lib64".to_string(),
        "/usr/lib64".to_string(),
        "/lib".to_string(),
        "/usr/lib".to_string(),
    ]
}

/// What the dynamic section of one ELF file asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Needs {
    interpreter: Option<String>,
    needed: Vec<String>,
    search: Vec<String>,
}

/// All files `executable` (built for `arch`) needs at run time, by
/// absolute path in the guest (the same as on the host), transitively.
/// Empty for a static executable.
pub(super) fn runtime_files(
    executable: &Path,
    arch: Arch,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut files = BTreeMap::new();
    let mut queue = vec![executable.to_path_buf()];
    while let Some(object) = queue.pop() {
        let needs = read_needs(&object, arch)?;
        if let Some(interpreter) = needs.interpreter {
            if !is_for(Path::new(&interpreter), arch) {
                return Err(Error::LibraryMissing {
                    arch,
                    library: interpreter,
                    needed_by: object,
                    searched: "the host (ELF interpreter)".to_string(),
                });
            }
            files
                .entry(interpreter.clone())
                .or_insert_with(|| PathBuf::from(interpreter));
        }
        let origin = object.parent().unwrap_or(Path::new("/"));
        let dirs: Vec<String> = needs
            .search
            .iter()
            .map(|dir| dir.replace("$ORIGIN", &origin.to_string_lossy()))
            .chain(system_dirs(arch))
            .collect();
        for library in needs.needed {
            let found = dirs
                .iter()
                .map(|dir| Path::new(dir).join(&library))
                .find(|candidate| is_for(candidate, arch))
                .ok_or_else(|| Error::LibraryMissing {
                    arch,
                    library: library.clone(),
                    needed_by: object.clone(),
                    searched: dirs.join(":"),
                })?;
            let key = found.to_string_lossy().into_owned();
            if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(key) {
                slot.insert(found.clone());
                queue.push(found);
            }
        }
    }
    Ok(files)
}

/// Whether `path` is a file holding a 64-bit ELF object for `arch`.
fn is_for(path: &Path, arch: Arch) -> bool {
    let mut head = [0u8; 64];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut head))
        .is_ok_and(|()| machine(&head) == Ok(arch.elf_machine()))
}

/// The `e_machine` of a 64-bit ELF header.
fn machine(data: &[u8]) -> Result<u16, String> {
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    Ok(header.e_machine(endian))
}

fn read_needs(path: &Path, arch: Arch) -> Result<Needs, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_needs(&data, arch).map_err(|reason| Error::NotElf {
        path: path.to_path_buf(),
        arch,
        reason,
    })
}

fn parse_needs(data: &[u8], arch: Arch) -> Result<Needs, String> {
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let found = header.e_machine(endian);
    if found != arch.elf_machine() {
        return Err(format!(
            "ELF machine {found}, where {arch} is {}",
            arch.elf_machine()
        ));
    }
    let mut needs = Needs::default();
    for segment in header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
    {
        if let Some(interpreter) = segment
            .interpreter(endian, data)
            .map_err(|e| e.to_string())?
        {
            needs.interpreter = Some(String::from_utf8_lossy(interpreter).into_owned());
        }
    }
    let sections = header.sections(endian, data).map_err(|e| e.to_string())?;
    let Some((entries, link)) = sections.dynamic(endian, data).map_err(|e| e.to_string())? else {
        return Ok(needs);
    };
    let strings = sections
        .strings(endian, data, link)
        .map_err(|e| e.to_string())?;
    for entry in entries {
        let text = |strings: StringTable<'_>| -> Result<String, String> {
            let bytes = entry.string(endian, strings).map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(bytes).into_owned())
        };
        match entry.tag32(endian) {
            Some(elf::DT_NEEDED) => needs.needed.push(text(strings)?),
            Some(elf::DT_RUNPATH | elf::DT_RPATH) => {
                needs
                    .search
                    .extend(text(strings)?.split(':').map(str::to_string));
            }
            _ => {}
        }
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_needs_libc_and_the_loader() {
        // This test binary itself is a real dynamically linked program.
        let exe = std::env::current_exe().unwrap();
        let files = runtime_files(&exe, Arch::host()).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert!(
            names.iter().any(|name| name.ends_with("/libc.so.6")),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|name| name.contains("ld-linux-x86-64.so.2")),
            "{names:?}"
        );
    }

    #[test]
    fn non_elf_is_rejected_with_a_reason() {
        let err = parse_needs(b"#!/bin/sh\necho hi\n", Arch::host()).unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn a_program_for_another_architecture_is_rejected_with_both_machines() {
        let exe = std::env::current_exe().unwrap();
        let other = Arch::ALL.into_iter().find(|a| *a != Arch::host()).unwrap();
        let err = runtime_files(&exe, other).unwrap_err();
        let Error::NotElf { reason, arch, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*arch, other);
        assert_eq!(
            *reason,
            format!(
                "ELF machine {}, where {other} is {}",
                Arch::host().elf_machine(),
                other.elf_machine()
            )
        );
    }

    #[test]
    fn libraries_of_another_architecture_are_passed_over() {
        let exe = std::env::current_exe().unwrap();
        assert!(is_for(&exe, Arch::host()));
        let other = Arch::ALL.into_iter().find(|a| *a != Arch::host()).unwrap();
        assert!(!is_for(&exe, other));
        assert!(!is_for(Path::new("/nonexistent"), Arch::host()));
    }
}
